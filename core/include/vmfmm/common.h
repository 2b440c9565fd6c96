/*
 * vmfmm/common.h - version, export macro and error reporting shared by every
 * libvmfmm module.
 *
 * Error model: a function that can fail returns int, VMF_OK (0) or one of the
 * negative VMF_E* codes below. vmf_strerror() gives the generic text of a code;
 * vmf_last_error() gives the detailed message of the calling thread's most
 * recent failure ("row 17 has 63 columns, expected 64"). The codes are part of
 * the ABI: they are numbered explicitly and never renumbered.
 */
#ifndef VMFMM_COMMON_H
#define VMFMM_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define VMF_VERSION_MAJOR 0
#define VMF_VERSION_MINOR 2
#define VMF_VERSION_PATCH 0

#if defined(VMF_STATIC)
#define VMF_API
#elif defined(VMF_BUILDING_LIBRARY)
#define VMF_API __attribute__((visibility("default")))
#else
#define VMF_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

enum {
    VMF_OK = 0,
    VMF_EINVAL = -1,   /* bad argument or bad data from the caller (NaN, wrong dim, ...) */
    VMF_ENOMEM = -2,   /* allocation failed or a size would overflow */
    VMF_EIO = -3,      /* the operating system refused a read or write */
    VMF_EFORMAT = -4,  /* a file or serialized state is malformed */
    VMF_ERANGE = -5,   /* a value lies outside the supported range */
    VMF_ENOTFOUND = -6 /* a named entry (file member, class, key) does not exist */
};

/* "0.2.0": the version the library was built as. Thread-safe. */
VMF_API const char *vmf_version(void);

/* Generic, static text for an error code; never NULL. Thread-safe. */
VMF_API const char *vmf_strerror(int rc);

/*
 * Detailed message of the calling thread's last failure, or "" when none.
 * Valid until the same thread's next failing call. Thread-local.
 */
VMF_API const char *vmf_last_error(void);

/*
 * Allocation failure injection for tests: after `countdown` more successful
 * allocations by the calling thread, every allocation by libvmfmm fails with
 * VMF_ENOMEM. A negative value (the default) disables injection.
 *
 * Not part of the shared library's symbol table: it is declared only for the
 * static build (VMF_STATIC) that the tests link, and for the library itself.
 */
#if defined(VMF_STATIC) || defined(VMF_BUILDING_LIBRARY)
void vmf_debug_fail_alloc_after(long countdown);
#endif

/*
 * Releases memory that libvmfmm allocated and handed to the caller (the
 * strings of vmf_mixture_to_json and vmf_classifier_to_json, the buffers of
 * vmf_classifier_save, vmf_npy_write_mem, vmf_npz_write_mem, ...). For
 * callers that cannot reach the C library's free(), such as a Python binding
 * built on ctypes. NULL is accepted. Thread-safe.
 */
VMF_API void vmf_free(void *p);

/*
 * ABI guard for bindings that mirror the public option and report structs
 * (vmf_em_opts, vmf_kappa_opts, vmf_em_report, vmf_rng, vmf_stepwise_opts,
 * vmf_classifier_opts, vmf_labels, vmf_array) instead of including this
 * header. vmf_abi_sizeof gives sizeof the named struct as this library was
 * built, or 0 for an unknown name. vmf_abi_field gives the offset and size of
 * one member ("kappa.estimator" and "stepwise.kappa.estimator" reach into
 * nested structs); it returns VMF_OK, or VMF_ENOTFOUND for an unknown struct
 * or member. A binding that allocates vmf_abi_sizeof bytes, fills them with
 * the init function, and writes only members whose offset and size it has
 * checked stays correct when later versions add members. Thread-safe.
 */
VMF_API size_t vmf_abi_sizeof(const char *type);
VMF_API int vmf_abi_field(const char *type, const char *field, size_t *offset, size_t *size);

#ifdef __cplusplus
}
#endif
#endif
