#define _GNU_SOURCE /* O_DIRECTORY */
#include "h5io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* No string mpigan writes comes near this; a longer one is damage, not a configuration. */
#define MG_H5_STRING_MAX (64u << 20)

void mg_h5_quiet(void)
{
    /* Fails only if the library cannot initialise, which the next call reports anyway. */
    (void)H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* 0 if id closed cleanly (or was never opened, id < 0), else -1. */
static int closed(hid_t id)
{
    if (id < 0)
        return 0;
    herr_t rc;
    switch (H5Iget_type(id)) {
    case H5I_FILE: rc = H5Fclose(id); break;
    case H5I_GROUP: rc = H5Gclose(id); break;
    case H5I_DATASET: rc = H5Dclose(id); break;
    case H5I_ATTR: rc = H5Aclose(id); break;
    case H5I_DATASPACE: rc = H5Sclose(id); break;
    case H5I_DATATYPE: rc = H5Tclose(id); break;
    case H5I_GENPROP_LST: rc = H5Pclose(id); break;
    default: rc = -1; break;
    }
    return rc < 0 ? -1 : 0;
}

void mg_h5_close(hid_t id)
{
    (void)closed(id); /* clean-up after an error: the first error is the one reported */
}

/* Strings read from a file go into one-line messages and printouts: no control characters. */
static void sanitize(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';
}

/* ---- files ---- */

/* File access properties for every file mpigan opens or creates. */
static hid_t file_access(int creating)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0)
        return -1;
    int ok = 1;
#if H5_VERSION_GE(1, 10, 7)
    /* Lock where the file system can, carry on where locking is disabled (NFS, Lustre mounts
     * without flock), instead of failing to open as HDF5 does by default. */
    ok = H5Pset_file_locking(fapl, 1, 1) >= 0;
#endif
    /* New files in the HDF5 1.8 format, not the default 1.0: its superblock, object headers and
     * heaps carry checksums, so damaged metadata reads as an error instead of as other values.
     * Every HDF5 since 1.8 (so every h5py) reads it. */
    if (ok && creating)
        ok = H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18) >= 0;
    if (!ok) {
        mg_h5_close(fapl);
        return -1;
    }
    return fapl;
}

/* Little-endian unsigned of n <= 8 bytes. */
static uint64_t le_u(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* 0 if a version 0 or 1 superblock names a driver information block that does not fit in the
 * file, else 1. H5Fopen reads that block (used only by the family and multi drivers) trusting the
 * size stored in it: a damaged one made it allocate and fill 2 GB for a 2 kB file (found by
 * fuzz_h5data). Later superblocks keep it in a checksummed extension. The superblock is at 0 or
 * after a user block of 512 x 2^k bytes. */
static int driver_info_fits(int fd, uint64_t file_bytes)
{
    FILE *fp = fdopen(fd, "rb");
    if (!fp) {
        close(fd);
        return 1; /* HDF5 reports it */
    }
    unsigned char sb[96];
    int ok = 1;
    for (uint64_t at = 0; at + sizeof sb <= file_bytes; at = at ? 2 * at : 512) {
        if (fseeko(fp, (off_t)at, SEEK_SET) != 0 || fread(sb, 1, sizeof sb, fp) != sizeof sb)
            break;
        if (memcmp(sb, "\x89HDF\r\n\x1a\n", 8) != 0)
            continue;
        int version = sb[8], sizeof_addr = sb[13];
        if ((version != 0 && version != 1) || sizeof_addr < 2 || sizeof_addr > 8)
            break;
        /* Base address, free-space address, end of file, driver information block: after 24
         * bytes (28 in version 1). */
        const unsigned char *a = sb + (version ? 28 : 24);
        uint64_t base = le_u(a, sizeof_addr), drv = le_u(a + 3 * sizeof_addr, sizeof_addr);
        uint64_t undef = sizeof_addr == 8 ? UINT64_MAX : (UINT64_C(1) << (8 * sizeof_addr)) - 1;
        unsigned char d[8];
        if (drv == undef)
            break;
        /* version, 3 reserved bytes, the size of the information, then an 8-byte driver id */
        ok = base <= file_bytes && drv <= file_bytes - base && file_bytes - base - drv >= 16 &&
             fseeko(fp, (off_t)(base + drv), SEEK_SET) == 0 && fread(d, 1, 8, fp) == 8 &&
             le_u(d + 4, 4) <= file_bytes - base - drv - 16;
        break;
    }
    fclose(fp);
    return ok;
}

static int h5_open(hid_t *file, const char *path, int writable, mg_error *err)
{
    mg_h5_quiet();
    *file = H5I_INVALID_HID;
    /* HDF5 opens by name, and would block in open(2) on a FIFO: a regular file only. */
    int fd;
    if (mg_file_open_input(&fd, path, err))
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return mg_fail(err, "%s: cannot open: %s", path, strerror(e));
    }
    if (writable && access(path, W_OK) != 0) {
        int e = errno;
        close(fd);
        return mg_fail(err, "%s: cannot open: %s", path, strerror(e));
    }
    /* A truncated file whose superblock survives passes H5Fis_hdf5; H5Fopen then finds the end
     * of file short of where the superblock says it is. driver_info_fits closes fd. */
    if (!driver_info_fits(fd, (uint64_t)st.st_size) || H5Fis_hdf5(path) <= 0)
        return mg_fail(err, "%s: not an HDF5 file, or truncated", path);
    hid_t fapl = file_access(0), f = -1;
    if (fapl >= 0)
        f = H5Fopen(path, writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
    mg_h5_close(fapl);
    if (f < 0)
        return mg_fail(err, "%s: not an HDF5 file, or truncated", path);
    *file = f;
    return 0;
}

int mg_h5_open(hid_t *file, const char *path, int writable, mg_error *err)
{
    return h5_open(file, path, writable, err) ? mg_file_one_line(err) : 0;
}

int mg_h5_create(hid_t *file, const char *path, mg_error *err)
{
    mg_h5_quiet();
    hid_t fapl = file_access(1);
    *file = -1;
    if (fapl >= 0)
        *file = H5Fcreate(path, H5F_ACC_EXCL, H5P_DEFAULT, fapl); /* never an existing file */
    mg_h5_close(fapl);
    if (*file < 0)
        return mg_fail(err, "cannot create %s", path);
    return 0;
}

int mg_h5_finish(hid_t file, mg_error *err)
{
    int rc = 0;
    /* Objects still open keep the file open after H5Fclose (the default "weak" close): close
     * them so the file really is closed, and report the leak, which is a bug in mpigan. */
    ssize_t n = H5Fget_obj_count(file, H5F_OBJ_ALL | H5F_OBJ_LOCAL);
    if (n < 0) {
        rc = mg_fail(err, "cannot count the open objects of the file");
    } else if (n > 1) {
        hid_t ids[64];
        ssize_t got = H5Fget_obj_ids(file, H5F_OBJ_ALL | H5F_OBJ_LOCAL, 64, ids);
        for (ssize_t i = 0; i < got; i++)
            if (ids[i] != file)
                mg_h5_close(ids[i]);
        rc = mg_fail(err, "internal error: %zd HDF5 objects left open", n - 1);
    }
    if (H5Fflush(file, H5F_SCOPE_LOCAL) < 0 && rc == 0)
        rc = mg_fail(err, "cannot flush the file");
    if (H5Fclose(file) < 0 && rc == 0)
        rc = mg_fail(err, "cannot close the file");
    return rc;
}

void mg_h5_now_iso8601(char *buf, size_t n)
{
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm) == NULL || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, n, "unknown");
}

/* ---- writers ---- */

/* Strings are fixed-length (the length of the value, NUL-terminated), not variable-length: a
 * variable-length string lives in the file's global heap, and HDF5 1.10 copies it out trusting the
 * length stored there, so a damaged heap makes H5Aread read past its buffer (found by overwriting
 * bytes of a checkpoint). A fixed-length string sits in the object header, its size in its type. */
static hid_t string_type(const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0)
        return -1;
    if (H5Tset_size(t, strlen(value) + 1) < 0 || H5Tset_strpad(t, H5T_STR_NULLTERM) < 0 ||
        H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        mg_h5_close(t);
        return -1;
    }
    return t;
}

int mg_h5w_group(hid_t file, const char *name, mg_error *err)
{
    hid_t g = H5Gcreate2(file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return mg_fail(err, "cannot create group %s", name);
    if (closed(g))
        return mg_fail(err, "cannot close group %s", name);
    return 0;
}

/* A scalar attribute of file_type written from *value (of mem_type). */
static int write_attr(hid_t file, const char *obj, const char *name, hid_t file_type,
                      hid_t mem_type, const void *value, mg_error *err)
{
    int rc = -1;
    hid_t space = H5Screate(H5S_SCALAR), attr = -1;
    if (space >= 0)
        attr = H5Acreate_by_name(file, obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT,
                                 H5P_DEFAULT);
    if (attr >= 0 && H5Awrite(attr, mem_type, value) >= 0)
        rc = 0;
    rc |= closed(attr);
    rc |= closed(space);
    if (rc)
        return mg_fail(err, "cannot write attribute %s of %s", name, obj);
    return 0;
}

int mg_h5w_attr_str(hid_t file, const char *obj, const char *name, const char *value,
                    mg_error *err)
{
    hid_t type = string_type(value);
    if (type < 0)
        return mg_fail(err, "cannot make a string type");
    int rc = write_attr(file, obj, name, type, type, value, err);
    if (closed(type) && rc == 0)
        rc = mg_fail(err, "cannot close a string type");
    return rc;
}

int mg_h5w_attr(hid_t file, const char *obj, const char *name, hid_t file_type, hid_t mem_type,
                const void *value, mg_error *err)
{
    return write_attr(file, obj, name, file_type, mem_type, value, err);
}

/* Chunked with the Fletcher32 checksum filter: raw data has no checksum otherwise, and a damaged
 * tensor must fail to read, not load as other numbers. One chunk per dataset up to 1 GiB (HDF5
 * allows 4 GiB); bigger ones split along the first axis. */
static hid_t checksummed_dcpl(hid_t type, int rank, const hsize_t *dims)
{
    hsize_t chunk[MG_H5_MAX_RANK];
    double bytes = (double)H5Tget_size(type);
    for (int i = 0; i < rank; i++) {
        if (dims[i] == 0)
            return H5Pcreate(H5P_DATASET_CREATE); /* empty: contiguous, nothing to check */
        chunk[i] = dims[i];
        bytes *= (double)dims[i];
    }
    while (bytes > (double)(1u << 30) && chunk[0] > 1) {
        chunk[0] = (chunk[0] + 1) / 2;
        bytes /= 2;
    }
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (dcpl >= 0 && (H5Pset_chunk(dcpl, rank, chunk) < 0 || H5Pset_fletcher32(dcpl) < 0)) {
        mg_h5_close(dcpl);
        return -1;
    }
    return dcpl;
}

int mg_h5w_dataset(hid_t file, const char *name, hid_t file_type, hid_t mem_type, int rank,
                   const hsize_t *dims, const void *buf, mg_error *err)
{
    hid_t space = H5Screate_simple(rank, dims, NULL), dset = -1;
    hid_t dcpl = rank > 0 && rank <= MG_H5_MAX_RANK ? checksummed_dcpl(file_type, rank, dims) : -1;
    if (space >= 0 && dcpl >= 0)
        dset = H5Dcreate2(file, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    mg_h5_close(dcpl);
    if (dset < 0) {
        mg_h5_close(space);
        return mg_fail(err, "cannot create %s", name);
    }
    int rc = H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0 ? -1 : 0;
    rc |= closed(dset);
    rc |= closed(space);
    if (rc)
        return mg_fail(err, "cannot write %s", name);
    return 0;
}

int mg_h5w_text(hid_t file, const char *name, const char *text, mg_error *err)
{
    hid_t type = string_type(text), space = H5Screate(H5S_SCALAR), dset = -1;
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    /* Compact: the text sits in the dataset's object header, under its checksum, where
     * contiguous raw data would have none. Object headers hold up to 64 KiB; a configuration is a
     * few kB. */
    int ok = type >= 0 && space >= 0 && dcpl >= 0;
    if (ok && strlen(text) < 60000)
        ok = H5Pset_layout(dcpl, H5D_COMPACT) >= 0;
    if (ok)
        dset = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    mg_h5_close(dcpl);
    if (dset < 0) {
        mg_h5_close(space);
        mg_h5_close(type);
        return mg_fail(err, "cannot create %s", name);
    }
    int rc = H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, text) < 0 ? -1 : 0;
    rc |= closed(dset);
    rc |= closed(space);
    rc |= closed(type);
    if (rc)
        return mg_fail(err, "cannot write %s", name);
    return 0;
}

/* ---- readers ---- */

/* H5Lexists checks only the last component: walk the path one link at a time. 1 with the first
 * missing prefix in `missing` (1024 bytes), 0 if every link exists, -1 on error. */
static int first_missing(hid_t file, const char *path, const char *name, char *missing,
                         mg_error *err)
{
    size_t len = strlen(name);
    if (len >= 1024)
        return mg_fail(err, "%s: object name too long: %s", path, name);
    for (size_t i = 1; i <= len; i++) {
        if (i < len && name[i] != '/')
            continue;
        memcpy(missing, name, i);
        missing[i] = '\0';
        htri_t there = H5Lexists(file, missing, H5P_DEFAULT);
        if (there < 0)
            return mg_fail(err, "%s: cannot read %s", path, missing);
        if (there == 0)
            return 1;
    }
    return 0;
}

int mg_h5r_require(hid_t file, const char *path, const char *name, mg_error *err)
{
    char missing[1024];
    int rc = first_missing(file, path, name, missing, err);
    if (rc > 0)
        return mg_fail(err, "%s: %s missing", path, missing);
    return rc;
}

int mg_h5r_has_attr(hid_t file, const char *path, const char *obj, const char *name,
                    mg_error *err)
{
    if (mg_h5r_require(file, path, obj, err))
        return -1;
    htri_t has = H5Aexists_by_name(file, obj, name, H5P_DEFAULT);
    if (has < 0)
        return mg_fail(err, "%s: cannot read the attributes of %s", path, obj);
    return has > 0;
}

/* Opens a scalar (one-value) attribute. */
static hid_t open_attr(hid_t file, const char *path, const char *obj, const char *name,
                       mg_error *err)
{
    int has = mg_h5r_has_attr(file, path, obj, name, err);
    if (has < 0)
        return -1;
    if (has == 0) {
        mg_fail(err, "%s: attribute \"%s\" of %s missing", path, name, obj);
        return -1;
    }
    hid_t attr = H5Aopen_by_name(file, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    hid_t space = attr >= 0 ? H5Aget_space(attr) : -1;
    hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    mg_h5_close(space);
    if (n < 0) {
        mg_h5_close(attr);
        mg_fail(err, "%s: cannot read attribute \"%s\" of %s", path, name, obj);
        return -1;
    }
    if (n != 1) {
        mg_h5_close(attr);
        mg_fail(err, "%s: attribute \"%s\" of %s holds %lld values, expected one", path, name,
                obj, (long long)n);
        return -1;
    }
    return attr;
}

/* The string in attribute or scalar dataset `obj` (of file type `type`), malloc'd and
 * NUL-terminated. Fixed-length strings only (see string_type): a variable-length one would be read
 * from the global heap, which HDF5 does not check. -1: read failed; -2: too long; -3:
 * variable-length. */
static int read_string(hid_t obj, int is_attr, hid_t type, char **out)
{
    *out = NULL;
    htri_t vlen = H5Tis_variable_str(type);
    if (vlen != 0)
        return vlen > 0 ? -3 : -1;
    size_t size = H5Tget_size(type);
    if (size == 0)
        return -1;
    if (size >= MG_H5_STRING_MAX)
        return -2;
    /* The memory type is the file's own string type: HDF5 will not convert between character
     * sets, and the size is the buffer's. */
    hid_t mem = H5Tcopy(type);
    if (mem < 0)
        return -1;
    char *s = mg_xmalloc(size + 1);
    herr_t r = is_attr ? H5Aread(obj, mem, s) : H5Dread(obj, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, s);
    mg_h5_close(mem);
    if (r < 0) {
        free(s);
        return -1;
    }
    s[size] = '\0'; /* null-terminated, null-padded, space-padded or full: cut at the first NUL */
    *out = s;
    return 0;
}

static H5T_class_t attr_class(hid_t attr, hid_t *type_out)
{
    hid_t type = H5Aget_type(attr);
    H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    if (type_out)
        *type_out = type;
    else
        mg_h5_close(type);
    return cls;
}

int mg_h5r_attr_str(hid_t file, const char *path, const char *obj, const char *name, char *buf,
                    size_t n, mg_error *err)
{
    hid_t attr = open_attr(file, path, obj, name, err);
    if (attr < 0)
        return -1;
    hid_t type = -1;
    H5T_class_t cls = attr_class(attr, &type);
    char *s = NULL;
    int rc = cls == H5T_STRING ? read_string(attr, 1, type, &s) : -4;
    mg_h5_close(type);
    mg_h5_close(attr);
    if (rc == -4)
        return mg_fail(err, "%s: attribute \"%s\" of %s is not a string", path, name, obj);
    if (rc == -3)
        return mg_fail(err, "%s: attribute \"%s\" of %s is a variable-length string; mpigan "
                            "reads fixed-length ones", path, name, obj);
    if (rc == -2)
        return mg_fail(err, "%s: attribute \"%s\" of %s is too long", path, name, obj);
    if (rc < 0)
        return mg_fail(err, "%s: cannot read attribute \"%s\" of %s", path, name, obj);
    snprintf(buf, n, "%s", s);
    free(s);
    sanitize(buf);
    return 0;
}

/* A scalar numeric attribute read as mem_type; integer_only rejects floats. */
static int read_num_attr(hid_t file, const char *path, const char *obj, const char *name,
                         hid_t mem_type, int integer_only, void *value, mg_error *err)
{
    hid_t attr = open_attr(file, path, obj, name, err);
    if (attr < 0)
        return -1;
    H5T_class_t cls = attr_class(attr, NULL);
    if (cls != H5T_INTEGER && (integer_only || cls != H5T_FLOAT)) {
        mg_h5_close(attr);
        return mg_fail(err, "%s: attribute \"%s\" of %s is not %s", path, name, obj,
                       integer_only ? "an integer" : "a number");
    }
    herr_t r = H5Aread(attr, mem_type, value);
    mg_h5_close(attr);
    if (r < 0)
        return mg_fail(err, "%s: cannot read attribute \"%s\" of %s", path, name, obj);
    return 0;
}

int mg_h5r_attr_i64(hid_t file, const char *path, const char *obj, const char *name,
                    int64_t *value, mg_error *err)
{
    return read_num_attr(file, path, obj, name, H5T_NATIVE_INT64, 1, value, err);
}

int mg_h5r_attr_u64(hid_t file, const char *path, const char *obj, const char *name,
                    uint64_t *value, mg_error *err)
{
    return read_num_attr(file, path, obj, name, H5T_NATIVE_UINT64, 1, value, err);
}

int mg_h5r_attr_f64(hid_t file, const char *path, const char *obj, const char *name,
                    double *value, mg_error *err)
{
    return read_num_attr(file, path, obj, name, H5T_NATIVE_DOUBLE, 0, value, err);
}

/* Opens dataset name, which must exist and be a dataset, and describes it. */
static hid_t open_dataset(hid_t file, const char *path, const char *name, mg_h5_info *info,
                          mg_error *err)
{
    if (mg_h5r_require(file, path, name, err))
        return -1;
    hid_t obj = H5Oopen(file, name, H5P_DEFAULT);
    if (obj < 0) {
        mg_fail(err, "%s: cannot read %s", path, name);
        return -1;
    }
    if (H5Iget_type(obj) != H5I_DATASET) {
        mg_h5_close(obj);
        mg_fail(err, "%s: %s is not a dataset", path, name);
        return -1;
    }
    memset(info, 0, sizeof *info);
    hid_t space = H5Dget_space(obj), type = H5Dget_type(obj);
    int rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    int ok = rank >= 0 && type >= 0;
    if (ok && rank <= MG_H5_MAX_RANK) {
        info->rank = rank;
        ok = H5Sget_simple_extent_dims(space, info->dims, NULL) == rank;
        info->cls = H5Tget_class(type);
        info->size = H5Tget_size(type);
        ok = ok && info->cls != H5T_NO_CLASS && info->size > 0;
        if (ok && info->cls == H5T_INTEGER) {
            H5T_sign_t sign = H5Tget_sign(type);
            ok = sign != H5T_SGN_ERROR;
            info->is_signed = sign == H5T_SGN_2;
        }
    }
    mg_h5_close(space);
    mg_h5_close(type);
    if (!ok) {
        mg_h5_close(obj);
        mg_fail(err, "%s: cannot read %s", path, name);
        return -1;
    }
    if (rank > MG_H5_MAX_RANK) {
        mg_h5_close(obj);
        mg_fail(err, "%s: %s has %d dimensions, more than any mpigan dataset", path, name, rank);
        return -1;
    }
    return obj;
}

int mg_h5r_info(hid_t file, const char *path, const char *name, mg_h5_info *info, mg_error *err)
{
    hid_t dset = open_dataset(file, path, name, info, err);
    if (dset < 0)
        return -1;
    mg_h5_close(dset);
    return 0;
}

static int same_shape(const mg_h5_info *info, int rank, const hsize_t *dims)
{
    if (info->rank != rank)
        return 0;
    for (int i = 0; i < rank; i++)
        if (info->dims[i] != dims[i])
            return 0;
    return 1;
}

/* Where the values of rows [lo, hi) of the first axis are: 1 in this file, all of them; 0 nowhere
 * in it; -1 damaged (or an HDF5 error).
 *
 * Nowhere: a dataset never written, which HDF5 reads as its fill value without an error (an
 * h5py file of 1400 bytes read as 100,000 images of zeros, filling 1.6 GB), or one stored in
 * other files (external or virtual storage), which a file could point at anything readable.
 * Damaged: the chunk index (a B-tree without checksums in the 1.8 format) can lose a chunk, or
 * place one past the end of the file; either reads as zeros without an error, and zeros even pass
 * the Fletcher32 check. So every chunk holding the rows must be found, inside the file, with all
 * its filters (the checksum) applied; contiguous data must lie inside the file; and only the
 * chunks of the rows asked for are looked up, so a part of a big file is read without walking the
 * index of the rest. */
static int rows_stored(hid_t dset, int rank, const hsize_t *dims, hsize_t lo, hsize_t hi)
{
    hid_t fid = H5Iget_file_id(dset);
    hsize_t eof = 0;
    int got_eof = fid >= 0 && H5Fget_filesize(fid, &eof) >= 0;
    mg_h5_close(fid);
    hid_t dcpl = got_eof ? H5Dget_create_plist(dset) : -1;
    if (dcpl < 0)
        return -1;
    H5D_layout_t layout = H5Pget_layout(dcpl);
    int external = H5Pget_external_count(dcpl);
    hsize_t chunk[MG_H5_MAX_RANK];
    int ok = layout != H5D_LAYOUT_ERROR && external >= 0;
    if (ok && layout == H5D_CHUNKED)
        ok = H5Pget_chunk(dcpl, rank, chunk) == rank;
    mg_h5_close(dcpl);
    if (!ok)
        return -1;
    if (layout == H5D_VIRTUAL || external > 0)
        return 0;
    /* The bytes the whole dataset takes, each size checked before it is multiplied in. */
    hid_t type = H5Dget_type(dset);
    size_t esz = type >= 0 ? H5Tget_size(type) : 0;
    mg_h5_close(type);
    if (esz == 0)
        return -1;
    hsize_t bytes = esz;
    for (int i = 0; i < rank; i++) {
        if (dims[i] == 0)
            return 1; /* nothing stored, nothing to find */
        if (dims[i] > (hsize_t)-1 / bytes)
            return -1;
        bytes *= dims[i];
    }
    if (layout == H5D_CONTIGUOUS) {
        /* Never written: no storage. (H5Dget_offset of such a dataset adds a user block's size
         * to HADDR_UNDEF, so a v7.3 .mat file shows 511, not an undefined address.) */
        haddr_t addr = H5Dget_offset(dset);
        hsize_t size = H5Dget_storage_size(dset);
        if (addr == HADDR_UNDEF || size == 0)
            return 0;
        return size >= bytes && addr <= eof && bytes <= eof - addr ? 1 : -1;
    }
    if (layout == H5D_COMPACT) /* in the object header, under its checksum */
        return H5Dget_storage_size(dset) >= bytes ? 1 : -1;
    if (layout != H5D_CHUNKED)
        return -1;
    if (lo >= hi)
        return 1;
    for (int i = 0; i < rank; i++)
        if (chunk[i] == 0)
            return -1;
    /* Odometer over the chunks holding rows [lo, hi): the first axis from the chunk holding lo. */
    hsize_t start0 = lo / chunk[0] * chunk[0];
    hsize_t off[MG_H5_MAX_RANK] = {0};
    off[0] = start0;
    for (;;) {
        unsigned mask = 0;
        haddr_t addr = HADDR_UNDEF;
        hsize_t size = 0;
        if (H5Dget_chunk_info_by_coord(dset, off, &mask, &addr, &size) < 0 ||
            addr == HADDR_UNDEF || mask != 0 || addr > eof || size > eof - addr)
            return -1;
        int i = rank - 1;
        for (; i >= 0; i--) {
            off[i] += chunk[i];
            if (off[i] < (i == 0 ? hi : dims[i]))
                break;
            off[i] = i == 0 ? start0 : 0;
        }
        if (i < 0)
            return 1;
    }
}

/* The message for rows_stored's 0 and -1. */
static int not_stored(int where, const char *path, const char *name, mg_error *err)
{
    if (where == 0)
        return mg_fail(err, "%s: %s holds no data in this file (never written, or stored in other "
                       "files)", path, name);
    return mg_fail(err, "%s: cannot read %s", path, name);
}

/* Opens dataset `name`, which must have exactly the shape dims and mem_type's class. */
static hid_t open_expected(hid_t file, const char *path, const char *name, hid_t mem_type,
                           int rank, const hsize_t *dims, mg_error *err)
{
    mg_h5_info info;
    hid_t dset = open_dataset(file, path, name, &info, err);
    if (dset < 0)
        return -1;
    if (!same_shape(&info, rank, dims)) {
        char have[128], want[128];
        mg_h5_shape_str(have, sizeof have, info.rank, info.dims);
        mg_h5_shape_str(want, sizeof want, rank, dims);
        mg_h5_close(dset);
        mg_fail(err, "%s: %s has shape %s, expected %s", path, name, have, want);
        return -1;
    }
    H5T_class_t want_cls = H5Tget_class(mem_type);
    if (info.cls != want_cls) {
        char have[32], want[32];
        mg_h5_info w = {.cls = want_cls, .size = H5Tget_size(mem_type), .is_signed = 1};
        mg_h5_type_str(have, sizeof have, &info);
        mg_h5_type_str(want, sizeof want, &w);
        mg_h5_close(dset);
        mg_fail(err, "%s: %s holds %s, expected %s", path, name, have, want);
        return -1;
    }
    return dset;
}

int mg_h5r_dataset(hid_t file, const char *path, const char *name, hid_t mem_type, int rank,
                   const hsize_t *dims, void *buf, mg_error *err)
{
    hid_t dset = open_expected(file, path, name, mem_type, rank, dims, err);
    if (dset < 0)
        return -1;
    int where = rows_stored(dset, rank, dims, 0, rank > 0 ? dims[0] : 1);
    herr_t r = where == 1 ? H5Dread(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : -1;
    mg_h5_close(dset);
    if (r < 0)
        return not_stored(where, path, name, err);
    return 0;
}

int mg_h5r_text(hid_t file, const char *path, const char *name, char **text, mg_error *err)
{
    *text = NULL;
    mg_h5_info info;
    hid_t dset = open_dataset(file, path, name, &info, err);
    if (dset < 0)
        return -1;
    hssize_t n = 1;
    for (int i = 0; i < info.rank; i++)
        n *= (hssize_t)info.dims[i];
    if (info.cls != H5T_STRING || n != 1) {
        mg_h5_close(dset);
        return mg_fail(err, "%s: %s is not a string", path, name);
    }
    hid_t type = H5Dget_type(dset);
    int rc = type >= 0 ? read_string(dset, 0, type, text) : -1;
    mg_h5_close(type);
    mg_h5_close(dset);
    if (rc == -2)
        return mg_fail(err, "%s: %s is too long", path, name);
    if (rc == -3)
        return mg_fail(err, "%s: %s is a variable-length string; mpigan reads fixed-length ones",
                       path, name);
    if (rc < 0)
        return mg_fail(err, "%s: cannot read %s", path, name);
    return 0;
}

int mg_h5r_format(hid_t file, const char *path, const char *format, int version,
                  const char *what, mg_error *err)
{
    int has = mg_h5r_has_attr(file, path, "/", "format", err);
    if (has < 0)
        return -1;
    if (has == 0)
        return mg_fail(err, "%s: not an mpigan %s (no format attribute)", path, what);
    char got[64];
    if (mg_h5r_attr_str(file, path, "/", "format", got, sizeof got, err))
        return -1;
    if (strcmp(got, format) != 0)
        return mg_fail(err, "%s: not an mpigan %s (format is \"%s\")", path, what, got);
    int64_t v;
    if (mg_h5r_attr_i64(file, path, "/", "format_version", &v, err))
        return -1;
    if (v != version)
        return mg_fail(err, "%s: %s format version %lld, this mpigan reads version %d", path,
                       what, (long long)v, version);
    return 0;
}

void mg_h5_shape_str(char *buf, size_t n, int rank, const hsize_t *dims)
{
    size_t k = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < rank && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%llu", i ? ", " : "",
                              (unsigned long long)dims[i]);
    if (k < n)
        snprintf(buf + k, n - k, ")");
}

void mg_h5_type_str(char *buf, size_t n, const mg_h5_info *info)
{
    switch (info->cls) {
    case H5T_FLOAT: snprintf(buf, n, "float%zu", 8 * info->size); break;
    case H5T_INTEGER:
        snprintf(buf, n, "%sint%zu", info->is_signed ? "" : "u", 8 * info->size);
        break;
    case H5T_STRING: snprintf(buf, n, "string"); break;
    case H5T_COMPOUND: snprintf(buf, n, "compound"); break;
    case H5T_ENUM: snprintf(buf, n, "enum"); break;
    case H5T_ARRAY: snprintf(buf, n, "array"); break;
    case H5T_VLEN: snprintf(buf, n, "vlen"); break;
    case H5T_OPAQUE: snprintf(buf, n, "opaque"); break;
    case H5T_REFERENCE: snprintf(buf, n, "reference"); break;
    case H5T_BITFIELD: snprintf(buf, n, "bitfield"); break;
    default: snprintf(buf, n, "unknown type"); break;
    }
}

int mg_h5_write_new(const char *path, int (*fill)(hid_t f, const void *ctx, mg_error *what),
                    const void *ctx, double bytes, mg_error *what)
{
    char tmp[MG_PATH_MAX + 32];
    if (mg_file_dir_writable(path, what) || mg_file_room(path, bytes, what) ||
        mg_file_temp_name(tmp, sizeof tmp, path, what))
        return -1;
    hid_t f;
    if (mg_h5_create(&f, tmp, what))
        return -1;
    int rc = fill(f, ctx, what);
    /* Closed on every path; the first failure is the one reported. */
    if (mg_h5_finish(f, rc ? NULL : what))
        rc = -1;
    if (rc == 0)
        rc = mg_file_commit_name(tmp, path, what);
    if (rc)
        unlink(tmp);
    return rc;
}

/* ---- readers of part of a dataset (h5data.c) ---- */

int mg_h5r_exists(hid_t file, const char *path, const char *name, mg_error *err)
{
    char missing[1024];
    int rc = first_missing(file, path, name, missing, err);
    return rc < 0 ? -1 : !rc;
}

int mg_h5r_stored(hid_t file, const char *path, const char *name, mg_error *err)
{
    mg_h5_info info;
    hid_t dset = open_dataset(file, path, name, &info, err);
    if (dset < 0)
        return -1;
    int where = rows_stored(dset, info.rank, info.dims, 0, info.rank > 0 ? info.dims[0] : 1);
    mg_h5_close(dset);
    return where == 1 ? 0 : not_stored(where, path, name, err);
}

int mg_h5r_rows(hid_t file, const char *path, const char *name, hid_t mem_type, int rank,
                const hsize_t *dims, hsize_t first, hsize_t count, void *buf, mg_error *err)
{
    hid_t dset = open_expected(file, path, name, mem_type, rank, dims, err);
    if (dset < 0)
        return -1;
    if (rank < 1 || first > dims[0] || count > dims[0] - first) {
        mg_h5_close(dset);
        return mg_fail(err, "%s: rows [%llu, %llu) of %s asked for, it has %llu", path,
                       (unsigned long long)first, (unsigned long long)(first + count), name,
                       rank < 1 ? 0ull : (unsigned long long)dims[0]);
    }
    hsize_t start[MG_H5_MAX_RANK] = {0}, size[MG_H5_MAX_RANK];
    int empty = count == 0;
    start[0] = first;
    size[0] = count;
    for (int i = 1; i < rank; i++) {
        size[i] = dims[i];
        empty |= dims[i] == 0;
    }
    if (empty) { /* no values: HDF5 refuses an empty hyperslab, and there is nothing to read */
        mg_h5_close(dset);
        return 0;
    }
    hid_t fspace = H5Dget_space(dset), mspace = H5Screate_simple(rank, size, NULL);
    herr_t r = -1;
    int where = -1;
    if (fspace >= 0 && mspace >= 0 &&
        H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, size, NULL) >= 0 &&
        (where = rows_stored(dset, rank, dims, first, first + count)) == 1)
        r = H5Dread(dset, mem_type, mspace, fspace, H5P_DEFAULT, buf);
    mg_h5_close(mspace);
    mg_h5_close(fspace);
    mg_h5_close(dset);
    if (r < 0)
        return not_stored(where, path, name, err);
    return 0;
}
