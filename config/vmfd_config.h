/*
 * vmfd_config.h - the configuration of vmfd: defaults, the INI loader
 * (libinih) with validation of every key, and command-line overrides.
 *
 * Every key lives in one table in vmfd_config.c (section, name, type, range,
 * default); config/vmfd.conf documents the same keys. Loading is
 * all-or-nothing: on error the message names the file, the line and the key,
 * and the output struct holds the defaults plus whatever was valid before.
 */
#ifndef VMFD_CONFIG_H
#define VMFD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define VMFD_CONFIG_PATH_MAX 1024

typedef enum vmfd_mode { VMFD_MODE_CLASSIFIER = 0, VMFD_MODE_CLUSTERING = 1 } vmfd_mode;

typedef struct vmfd_config {
    /* [server] */
    char listen[256];                       /* HOST:PORT, or "" for no TCP listener */
    char socket_path[VMFD_CONFIG_PATH_MAX]; /* Unix socket path, "" for none */
    char token_file[VMFD_CONFIG_PATH_MAX];  /* bearer token file, "" disables auth */
    uint64_t max_body_bytes;
    uint64_t max_header_bytes;
    uint64_t max_connections;
    uint64_t idle_timeout_ms;
    uint64_t predict_max_rows;
    /* [server] limits of one ingest (docs/vmfd-ops.md gives the memory formula) */
    uint64_t max_batch_rows;      /* rows per ingested batch */
    uint64_t max_dim;             /* values per row while the model's dim is unknown */
    uint64_t max_decoded_bytes;   /* absolute cap on one decompressed .npz member */
    uint64_t max_json_body_bytes; /* JSON bodies (parsing costs ~32x their size) */
    uint64_t max_label_bytes;     /* bytes of one label (UTF-8, or decimal digits) */
    uint64_t max_classes;         /* distinct labels the model may hold */
    uint64_t drain_timeout_ms;    /* SIGTERM: time to finish requests already read */
    /* [store] */
    char state_dir[VMFD_CONFIG_PATH_MAX];
    uint64_t queue_length;
    uint64_t checkpoint_every; /* batches per checkpoint */
    uint64_t keep_checkpoints;
    int64_t payload_retention_days; /* -1 keep forever, 0 drop when applied */
    int quick_check;                /* PRAGMA quick_check at startup */
    /* [model] */
    vmfd_mode mode;
    uint64_t dim; /* 0: learned from the first batch */
    uint64_t k_max;
    double alpha;
    double t0;
    double eta_floor;
    uint64_t minibatch;
    uint64_t seed;
    uint64_t refine_rows;     /* classifier: the head's sample per class (0: no head) */
    double novelty_threshold; /* predict marks a row unknown when its novelty exceeds this */
    /* [inbox] */
    int inbox_enabled;
    uint64_t inbox_scan_ms;
    /* [log] */
    int log_level; /* syslog priority 0..7: err=3, warning=4, notice=5, info=6, debug=7 */
} vmfd_config;

/* Fills every field with its documented default. */
void vmfd_config_defaults(vmfd_config *c);

/*
 * Sets one key from its text form, validating it. `section` and `key` as in
 * the file. Returns 0, or -1 with a message in err ("key: reason").
 */
int vmfd_config_set(vmfd_config *c, const char *section, const char *key, const char *value,
                    char *err, size_t errsize);

/*
 * Loads an INI file over *c. Returns 0, or -1 with "FILE:LINE: message" in
 * err (line 0 when the file cannot be opened).
 */
int vmfd_config_load(vmfd_config *c, const char *path, char *err, size_t errsize);

/* Checks cross-key constraints after all sources are applied. Returns 0 or -1 with err. */
int vmfd_config_validate(const vmfd_config *c, char *err, size_t errsize);

/* Parses a log level name ("err", "warning", "notice", "info", "debug") or digit 0..7. */
int vmfd_config_parse_level(const char *s, int *level);

/* Splits "HOST:PORT" ("[v6]:PORT" allowed). Returns 0 or -1. */
int vmfd_config_split_listen(const char *listen, char *host, size_t hostsize, int *port);

#endif
