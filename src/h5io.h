/* HDF5 helpers shared by checkpoint.c and sampleset.c. Internal: not installed, not in include/.
 *
 * Objects are named by their absolute path inside the file ("/generator/h0/W") and every helper
 * takes the file id, so a message can name the object without asking HDF5 for it. Every helper
 * closes what it opens, on every path, and checks every HDF5 return code.
 *
 * Errors come in two forms, because writing and reading report differently:
 *  - writers (mg_h5w_*, mg_h5_create, mg_h5_finish, mg_h5_write_new) put only
 *    *what failed* in err ("cannot create /generator/h0/W"); the caller knows which file the
 *    user asked for and prefixes "<path>: cannot write checkpoint: ".
 *  - readers (mg_h5_open, mg_h5r_*) put the whole line the user sees, starting "<path>: ".
 *
 * HDF5 prints its error stack to stderr by default; mg_h5_quiet turns that off, since a bad file
 * must give one line, not a page of stack. */
#ifndef MPIGAN_H5IO_H
#define MPIGAN_H5IO_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "mpigan/error.h"
#include "mpigan/files.h"
#include "mpigan/real.h"

#define MG_H5_MAX_RANK 5

/* mg_real in memory and on disk. Little-endian on disk whatever the machine, so files move. */
#ifdef MG_REAL_DOUBLE
#define MG_H5_REAL_MEM H5T_NATIVE_DOUBLE
#define MG_H5_REAL_FILE H5T_IEEE_F64LE
#else
#define MG_H5_REAL_MEM H5T_NATIVE_FLOAT
#define MG_H5_REAL_FILE H5T_IEEE_F32LE
#endif

/* Turns off HDF5's automatic error printing (process-wide; cheap: every entry point calls it). */
void mg_h5_quiet(void);

/* Closes any id by its type (file, group, dataset, attribute, dataspace, datatype, property
 * list); ids < 0 are ignored. For clean-up paths, where the first error is the one reported. */
void mg_h5_close(hid_t id);

/* ---- files ---- */

/* Opens an existing file read-only (writable 0) or read-write. Messages:
 * "<path>: cannot open: <strerror>" before HDF5 sees the file, then
 * "<path>: not an HDF5 file, or truncated". */
int mg_h5_open(hid_t *file, const char *path, int writable, mg_error *err);

/* Creates path, which must not exist (H5F_ACC_EXCL: never through a planted link), in the HDF5
 * 1.8 file format (metadata with checksums). */
int mg_h5_create(hid_t *file, const char *path, mg_error *err);

/* Flushes and closes a file written to; fails if any object of it is still open (a leak here
 * would keep the file open behind H5Fclose's back, unflushed). The file is closed either way. */
int mg_h5_finish(hid_t file, mg_error *err);

/* A new file at path, never half of one (files.h): checks the directory and that its file system
 * has room for about `bytes`, creates a fresh temporary beside it exclusively, lets `fill` write
 * the content, finishes, commits (fsync, rename, fsync of the directory). On failure path.tmp is removed, path is untouched, and `what` says what failed without
 * naming path (callers prefix it). */
int mg_h5_write_new(const char *path, int (*fill)(hid_t f, const void *ctx, mg_error *what),
                    const void *ctx, double bytes, mg_error *what);

/* "2024-05-01T12:00:00Z": now, UTC. */
void mg_h5_now_iso8601(char *buf, size_t n);

/* ---- writers: err gets what failed ---- */

int mg_h5w_group(hid_t file, const char *name, mg_error *err);
/* Fixed-length (strlen + 1, NUL-terminated) UTF-8 string attribute; h5py reads it as bytes. */
int mg_h5w_attr_str(hid_t file, const char *obj, const char *name, const char *value,
                    mg_error *err);
/* Scalar attribute of file_type from *value of mem_type. */
int mg_h5w_attr(hid_t file, const char *obj, const char *name, hid_t file_type, hid_t mem_type,
                const void *value, mg_error *err);
/* Dataset (rank >= 1, dims) of file_type from buf of mem_type, chunked with the Fletcher32
 * checksum filter, so that damaged data fails to read. */
int mg_h5w_dataset(hid_t file, const char *name, hid_t file_type, hid_t mem_type, int rank,
                   const hsize_t *dims, const void *buf, mg_error *err);
/* Scalar fixed-length UTF-8 string dataset, compact (in its checksummed object header) below
 * 60000 bytes. */
int mg_h5w_text(hid_t file, const char *name, const char *text, mg_error *err);

/* ---- readers: err gets "<path>: ..." ---- */

/* 0 if every component of name exists, else "<path>: <first missing prefix> missing". */
int mg_h5r_require(hid_t file, const char *path, const char *name, mg_error *err);

/* 1 if obj has attribute name, 0 if not, -1 (with err) if that cannot be told. */
int mg_h5r_has_attr(hid_t file, const char *path, const char *obj, const char *name,
                    mg_error *err);

/* A scalar fixed-length string attribute into buf, truncated to n - 1 bytes, control characters
 * replaced by '?' (it goes into one-line messages). Variable-length strings are refused: HDF5
 * reads them from the global heap without checking it (see h5io.c). */
int mg_h5r_attr_str(hid_t file, const char *path, const char *obj, const char *name, char *buf,
                    size_t n, mg_error *err);
/* Scalar numeric attributes, converted by HDF5: integers for the first two, any number for the
 * last. A missing attribute: "<path>: attribute \"t\" of /generator/optimizer missing". */
int mg_h5r_attr_i64(hid_t file, const char *path, const char *obj, const char *name,
                    int64_t *value, mg_error *err);
int mg_h5r_attr_u64(hid_t file, const char *path, const char *obj, const char *name,
                    uint64_t *value, mg_error *err);
int mg_h5r_attr_f64(hid_t file, const char *path, const char *obj, const char *name,
                    double *value, mg_error *err);

/* What a dataset holds. */
typedef struct {
    int rank;
    hsize_t dims[MG_H5_MAX_RANK];
    H5T_class_t cls;
    size_t size;    /* bytes per element */
    int is_signed;  /* integers */
} mg_h5_info;

/* Shape and element type of dataset name, which must exist ("... missing") and have rank <=
 * MG_H5_MAX_RANK. */
int mg_h5r_info(hid_t file, const char *path, const char *name, mg_h5_info *info, mg_error *err);

/* Reads all of dataset name into buf as mem_type. The dataset must have exactly (rank, dims) and
 * the class of mem_type (a float into a float, never an integer into a float), so buf can never
 * overflow; callers check shapes first to give their own wording. H5Dread failing (a corrupt
 * file) gives "<path>: cannot read <name>". */
int mg_h5r_dataset(hid_t file, const char *path, const char *name, hid_t mem_type, int rank,
                   const hsize_t *dims, void *buf, mg_error *err);

/* A scalar fixed-length string dataset as a malloc'd, NUL-terminated string. */
int mg_h5r_text(hid_t file, const char *path, const char *name, char **text, mg_error *err);

/* Checks the root attributes format == `format` and format_version == `version`; `what` names
 * the kind of file in messages: "<path>: not an mpigan <what> (no format attribute)",
 * "(format is \"xyz\")", "<path>: <what> format version 7, this mpigan reads version 1". */
int mg_h5r_format(hid_t file, const char *path, const char *format, int version,
                  const char *what, mg_error *err);

/* "(1200, 600)" */
void mg_h5_shape_str(char *buf, size_t n, int rank, const hsize_t *dims);
/* "float32", "float64", "int64", "uint8", "string", ... */
void mg_h5_type_str(char *buf, size_t n, const mg_h5_info *info);

/* ---- readers of part of a dataset ---- */

/* 1 if every component of name exists, 0 if one does not (the caller words "missing"), -1 with
 * "<path>: cannot read <prefix>" if that cannot be told. */
int mg_h5r_exists(hid_t file, const char *path, const char *name, mg_error *err);

/* 0 if every value of dataset name is stored in this file: "<path>: <name> holds no data in this
 * file (never written, or stored in other files)" if HDF5 would read fill values or another
 * file's bytes, "<path>: cannot read <name>" if a chunk is missing or the data lies past the end
 * of the file. mg_h5r_dataset and mg_h5r_rows check the same before they read; this is for data
 * another library (libmatio) will read. */
int mg_h5r_stored(hid_t file, const char *path, const char *name, mg_error *err);

/* Reads rows [first, first + count) of dataset name (along its first axis) into buf as mem_type:
 * count x dims[1] x ... values. As mg_h5r_dataset, the dataset must still have exactly (rank,
 * dims), as the caller found with mg_h5r_info, and the class of mem_type, so buf (sized from
 * dims) cannot overflow; only the hyperslab of those rows is read, and only its chunks are
 * checked, so a part of a file bigger than memory can be read. "<path>: cannot read <name>". */
int mg_h5r_rows(hid_t file, const char *path, const char *name, hid_t mem_type, int rank,
                const hsize_t *dims, hsize_t first, hsize_t count, void *buf, mg_error *err);

#endif
