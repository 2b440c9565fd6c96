/*
 * vmfd_store_views.h - what makes vmfd.db readable with sqlite3 alone: the
 * readable columns written beside each component's BLOBs, the operator
 * views, the migration of older databases, and the export of a stored
 * checkpoint as model JSON without touching the live state.
 *
 * The views decode the float32 BLOBs in SQL (docs/vmfd.md#store): the
 * first coordinates in component_summary.mean_head, the whole mean as a
 * JSON array in component_means. nearest_class / nearest_component name the
 * component of the same
 * checkpoint (any class) whose mean has the largest cosine with this one,
 * nearest_cos that cosine; NULL when the model has a single component.
 */
#ifndef VMFD_STORE_VIEWS_H
#define VMFD_STORE_VIEWS_H

#include "vmfd_model.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* (Re)creates the views and indexes (DROP ... IF EXISTS, then CREATE): at creation and migration.
 */
int vmfd_store_create_views(sqlite3 *db, char *err, size_t errsize);

/*
 * For means [k][d]: nearest[i] the index of the other row with the largest
 * cosine, cos[i] that cosine (nearest -1 and cos NaN when k < 2). Blocked
 * SGEMM, O(block*k) memory. Returns 0, or -1 when out of memory.
 */
int vmfd_store_nearest(const float *means, size_t k, size_t d, int64_t *nearest, double *cos);

/*
 * Upgrades a schema version 1 database to the current one inside the
 * caller's transaction: adds the readable component columns, fills the
 * nearest components from the BLOBs (labels of older checkpoints from the `classes` table),
 * and (re)creates the views.
 */
int vmfd_store_migrate_v1(sqlite3 *db, char *err, size_t errsize);

/*
 * Checkpoint id (0: the newest) of db as model JSON (*json malloc'ed), read
 * only; *id_out receives the id exported. Returns 0, 1 when there is no such
 * checkpoint, -1 with err on failure.
 */
int vmfd_store_export_checkpoint(sqlite3 *db, const vmfd_model_opts *o, int64_t id, int64_t *id_out,
                                 char **json, char *err, size_t errsize);

#endif
