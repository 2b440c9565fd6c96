#!/usr/bin/python3
"""Writes the malformed-input battery and its table, cases.tsv.

Run from anywhere with Debian's python3 (numpy only for the valid parts):
    /usr/bin/python3 tests/vectors/malformed/gen_malformed.py
Every file is built from fixed bytes, so re-running reproduces the committed
files exactly. cases.tsv has one line per case:
    file <TAB> api <TAB> status <TAB> keyword <TAB> what is wrong
where api says which entry point the tests feed it to (npy: vmf_npy_read, npz:
vmf_npz_read of member "X", csv: vmf_csv_read, matrix: vmf_load_matrix,
model: the model JSON loader used by the vmfmm CLI), status is the expected
VMF_E* code and keyword a substring the one-line error message must contain.
"""
import io
import os
import struct
import zipfile

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
cases = []


def emit(name, data, api, status, keyword, why):
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(here, name), "wb") as fp:
        fp.write(data)
    cases.append((name, api, status, keyword, why))


def npy(header, data=b"", version=(1, 0), pad=True):
    """An .npy image with a hand-written header text (bytes or str)."""
    if isinstance(header, str):
        header = header.encode("latin-1" if version[0] < 3 else "utf-8")
    fmt = "<H" if version[0] == 1 else "<I"
    if pad:
        hlen = len(header) + 1
        padlen = 64 - ((8 + struct.calcsize(fmt) + hlen) % 64)
        header = header + b" " * padlen + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack(fmt, len(header)) + header + data


def good(descr="<f4", shape="(2, 3)", fortran="False"):
    return "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)


f4_2x3 = np.arange(6, dtype="<f4").tobytes()
valid = npy(good(), f4_2x3)

# ---- .npy ----
emit("npy_empty.npy", b"", "npy", "EFORMAT", "too short", "zero-byte file")
emit("npy_bad_magic.npy", b"\x93NUMPZ" + valid[6:], "npy", "EFORMAT", "bad magic",
     "magic string is not \\x93NUMPY")
emit("npy_text.npy", "descr,shape\n<f4,2\n", "npy", "EFORMAT", "bad magic",
     "a text file named .npy")
emit("npy_bad_version.npy", valid[:6] + b"\x04\x00" + valid[8:], "npy", "EFORMAT",
     "version 4.0", "format version 4.0 does not exist")
emit("npy_bad_minor.npy", valid[:6] + b"\x01\x05" + valid[8:], "npy", "EFORMAT",
     "version 1.5", "format version 1.5 does not exist")
emit("npy_short_prefix.npy", valid[:9], "npy", "EFORMAT", "header length field",
     "file ends inside the header length field")
emit("npy_header_truncated.npy", valid[:40], "npy", "EFORMAT", "runs past the end",
     "header length says 118 bytes, the file ends after 30")
emit("npy_header_not_dict.npy", npy("['descr', '<f4', 'shape', (2, 3)]", f4_2x3), "npy",
     "EFORMAT", "expected '{'", "header is a list, not a dict")
emit("npy_missing_shape.npy", npy("{'descr': '<f4', 'fortran_order': False}", f4_2x3), "npy",
     "EFORMAT", "no 'shape' key", "header lacks 'shape'")
emit("npy_missing_descr.npy", npy("{'fortran_order': False, 'shape': (2, 3)}", f4_2x3),
     "npy", "EFORMAT", "no 'descr' key", "header lacks 'descr'")
emit("npy_unknown_key.npy",
     npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", f4_2x3), "npy",
     "EFORMAT", "unknown key 'x'", "an extra key numpy would reject")
emit("npy_duplicate_key.npy",
     npy("{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)}",
         f4_2x3), "npy", "EFORMAT", "duplicate key", "'descr' given twice")
emit("npy_unterminated.npy", npy("{'descr': '<f4, 'fortran_order': False}"), "npy",
     "EFORMAT", "expected ',' or '}'", "a quote missing after <f4 shifts every token")
emit("npy_unterminated_string.npy", npy("{'descr': '<f4"), "npy", "EFORMAT",
     "unterminated string", "the header ends inside a string")
emit("npy_bad_bool.npy", npy(good(fortran="0"), f4_2x3), "npy", "EFORMAT", "True or False",
     "fortran_order is 0 instead of False")
emit("npy_text_after_dict.npy", npy(good() + " extra", f4_2x3), "npy", "EFORMAT",
     "after the closing", "text after the closing brace")
emit("npy_fortran.npy", npy(good(fortran="True"), f4_2x3), "npy", "EFORMAT",
     "Fortran order", "a (2, 3) array in Fortran order")
emit("npy_object.npy", npy(good("|O", "(2,)"), b"\x80\x04N." * 4), "npy", "EFORMAT",
     "object", "an object (pickle) array")
emit("npy_big_endian.npy", npy(good(">f4"), f4_2x3), "npy", "EFORMAT", "big-endian",
     "big-endian float32")
emit("npy_unknown_dtype.npy", npy(good("<u4"), f4_2x3), "npy", "EFORMAT",
     "unsupported dtype '<u4'", "uint32 is not supported")
emit("npy_complex.npy", npy(good("<c8", "(3,)"), f4_2x3), "npy", "EFORMAT",
     "unsupported dtype '<c8'", "complex64")
emit("npy_structured.npy",
     npy("{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (3,), }",
         bytes(24)), "npy", "EFORMAT", "structured", "a record dtype")
emit("npy_U0.npy", npy(good("<U0", "(3,)")), "npy", "EFORMAT", "width 0",
     "strings of width 0")
emit("npy_negative_shape.npy", npy(good(shape="(-1, 3)"), f4_2x3), "npy", "EFORMAT",
     "negative", "a negative dimension")
emit("npy_shape_not_tuple.npy", npy(good(shape="(6)"), f4_2x3), "npy", "EFORMAT",
     "trailing comma", "(6) is an int in Python, not a 1-tuple")
emit("npy_shape_float.npy", npy(good(shape="(2.5, 3)"), f4_2x3), "npy", "EFORMAT",
     "expected ',' or ')'", "a float dimension")
emit("npy_dim_too_large.npy", npy(good(shape="(99999999999999999999999, 3)"), f4_2x3),
     "npy", "EFORMAT", "too large to represent", "a dimension beyond 64 bits")
emit("npy_shape_overflow.npy", npy(good(shape="(4294967296, 4294967296, 16)"), f4_2x3),
     "npy", "EFORMAT", "more elements than can be addressed", "the shape product overflows")
emit("npy_bytes_overflow.npy", npy(good("<f8", "(4611686018427387904,)"), f4_2x3), "npy",
     "EFORMAT", "more bytes than can be addressed", "count fits, count * 8 overflows")
emit("npy_huge_rows.npy", npy(good(shape="(1000000000, 64)"), bytes(200 - 128)), "npy",
     "EFORMAT", "needs 256000000000 data bytes but only 72",
     "10^9 x 64 float32 claimed by a 200-byte file: must fail before allocating")
emit("npy_over_limit.npy", npy(good("|u1", "(68719476737,)")), "npy", "EFORMAT",
     "needs 68719476737 data bytes but only 0",
     "one byte over the 64 GiB limit, and no data (test_npy makes a sparse file that has it)")
emit("npy_truncated_data.npy", npy(good(shape="(10, 3)"), bytes(100)), "npy", "EFORMAT",
     "truncated", "120 data bytes expected, 100 present")
emit("npy_trailing.npy", valid + b"garbage!", "npy", "EFORMAT", "8 trailing bytes",
     "bytes after the data")
emit("npy_ndim9.npy", npy(good(shape="(1, 1, 1, 1, 1, 1, 1, 1, 1)"), bytes(4)), "npy",
     "EFORMAT", "more than 8 dimensions", "nine dimensions")
emit("npy_non_ascii.npy", npy(good("<f4\u00e9"), f4_2x3), "npy", "EFORMAT", "not ASCII",
     "a latin-1 byte in a version 1.0 header")
emit("npy_v3_bad_utf8.npy", npy(good().encode() + b"\xc3(", f4_2x3, version=(3, 0)), "npy",
     "EFORMAT", "not valid UTF-8", "an invalid UTF-8 sequence in a version 3.0 header")
emit("npy_v3_unicode_dtype.npy", npy(good("<f4\u00e9"), f4_2x3, version=(3, 0)), "npy",
     "EFORMAT", "unsupported dtype", "valid UTF-8, but not a dtype")
emit("npy_escape.npy", npy("{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2, 3)}",
                           f4_2x3), "npy", "EFORMAT", "escape", "an escape sequence")
emit("npy_header_limit.npy",
     b"\x93NUMPY\x02\x00" + struct.pack("<I", (1 << 20) + 1) + b" " * ((1 << 20) + 1), "npy",
     "EFORMAT", "limit", "a 1 MiB + 1 header")
emit("npy_bad_codepoint.npy",
     npy(good("<U2", "(2,)"), struct.pack("<4I", 0x61, 0, 0x110000, 0x62)), "npy",
     "EFORMAT", "invalid code point 0x110000", "UTF-32 beyond U+10FFFF")
emit("npy_surrogate.npy", npy(good("<U1", "(1,)"), struct.pack("<I", 0xD800)), "npy",
     "EFORMAT", "invalid code point 0xd800", "a lone surrogate")
emit("npy_embedded_nul.npy", npy(good("<U3", "(1,)"), struct.pack("<3I", 0x61, 0, 0x62)),
     "npy", "EFORMAT", "embedded NUL", "a NUL inside a string (C strings cannot hold it)")


# ---- .npz ----
def zinfo(name, method=zipfile.ZIP_DEFLATED):
    zi = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    zi.compress_type = method
    return zi


def npz(members, method=zipfile.ZIP_DEFLATED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members:
            z.writestr(zinfo(name, method), data)
    return bytearray(buf.getvalue())


def npy_of(arr):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=(1, 0))
    return buf.getvalue()


def patch_sizes(z, comp=None, uncomp=None, crc=None):
    """Rewrites the first member's sizes in both its local and central headers."""
    loc = z.find(b"PK\x03\x04")
    cen = z.find(b"PK\x01\x02")
    for base, off_crc in ((loc, 14), (cen, 16)):
        if crc is not None:
            struct.pack_into("<I", z, base + off_crc, crc)
        if comp is not None:
            struct.pack_into("<I", z, base + off_crc + 4, comp)
        if uncomp is not None:
            struct.pack_into("<I", z, base + off_crc + 8, uncomp)
    return z


X = np.arange(12, dtype="<f4").reshape(4, 3)
good_npz = npz([("X.npy", npy_of(X)), ("y.npy", npy_of(np.arange(4, dtype="<i4")))])
emit("npz_empty.npz", b"", "npz", "EFORMAT", "empty", "zero-byte file")
emit("npz_not_zip.npz", "X,y\n1,2\n", "npz", "EFORMAT", "not a zip archive", "a text file")
emit("npz_npy_renamed.npz", npy_of(X), "npz", "EFORMAT", "not a zip archive",
     "an .npy file named .npz")
emit("npz_truncated.npz", good_npz[: len(good_npz) // 2], "npz", "EFORMAT",
     "not a zip archive", "the first half of an archive (no central directory)")
emit("npz_missing_X.npz", npz([("y.npy", npy_of(np.arange(4, dtype="<i4")))]), "npz",
     "ENOTFOUND", "no member X.npy", "only y is present")
emit("npz_member_not_npy.npz", npz([("X.npy", b"this is not an npy file\n")]), "npz",
     "EFORMAT", "bad magic", "X.npy holds text")
emit("npz_X_bad_dtype.npz", npz([("X.npy", npy_of(X.astype(">f4")))]), "npz", "EFORMAT",
     "big-endian", "X is big-endian")
emit("npz_X_complex.npz", npz([("X.npy", npy_of(X.astype("<c8")))]), "npz", "EFORMAT",
     "unsupported dtype '<c8'", "X has a dtype the library does not read")
bomb = npz([("X.npy", npy_of(X))])
emit("npz_bomb_declared.npz", patch_sizes(bomb, uncomp=4000000000), "npz", "EFORMAT",
     "1032:1", "declares 4e9 bytes from a few dozen compressed (zip bomb)")
stored = npz([("X.npy", npy_of(X))], zipfile.ZIP_STORED)
member_len = len(npy_of(X))
emit("npz_stored_size_lie.npz", patch_sizes(bytearray(stored), uncomp=member_len + 4096),
     "npz", "EFORMAT", "occupies", "stored member whose declared size exceeds its bytes")
short = npy_of(X)[:-8]  # the header promises 48 data bytes, 40 follow
emit("npz_short_stream.npz",
     patch_sizes(npz([("X.npy", short)]), uncomp=len(short) + 8), "npz", "EFORMAT",
     "fewer bytes than its declared size",
     "deflated stream ends 8 bytes before the declared size")
crc_bad = bytearray(stored)
crc_bad[crc_bad.find(b"PK\x03\x04") + 30 + len("X.npy") + 128] ^= 0x40
emit("npz_crc.npz", crc_bad, "npz", "EFORMAT", "integrity check failed",
     "one flipped data bit in a stored member (CRC mismatch)")
emit("npz_bzip2.npz", npz([("X.npy", npy_of(X))], zipfile.ZIP_BZIP2), "npz", "EFORMAT",
     "only stored (0) and deflated (8)", "member compressed with bzip2")

# ---- CSV ----
emit("csv_empty.csv", "", "csv", "EFORMAT", "no data rows", "zero-byte file")
emit("csv_comments_only.csv", "# nothing\n\n   \n# here\n", "csv", "EFORMAT", "no data rows",
     "only comments and blank lines")
emit("csv_header_only.csv", "a,b,c\n", "csv", "EFORMAT", "header (line 1) but no data rows",
     "a header and nothing else")
emit("csv_ragged.csv", "1,2,3\n4,5,6\n7,8\n", "csv", "EFORMAT",
     "line 3 has 2 fields, expected 3", "third row is short")
emit("csv_ragged_header.csv", "x,y\n1,2,3\n", "csv", "EFORMAT",
     "line 2 has 3 fields, expected 2", "row wider than the header")
emit("csv_non_numeric.csv", "1,2\n3,abc\n", "csv", "EFORMAT",
     "line 2, field 2: 'abc' is not a number", "text in a data row")
emit("csv_trailing_text.csv", "1.5x,2\n", "csv", "EFORMAT", "'1.5x' is not a number",
     "number followed by junk (strtod stops early)")
emit("csv_nan.csv", "1,2\nnan,4\n", "csv", "EFORMAT", "line 2, field 1: 'nan' is not a finite",
     "NaN text")
emit("csv_inf.csv", "1,-inf\n", "csv", "EFORMAT", "'-inf' is not a finite", "infinity text")
emit("csv_empty_field.csv", "1,,3\n", "csv", "EFORMAT", "line 1, field 2 is empty",
     "two commas in a row")
emit("csv_out_of_range.csv", "1,2\n1e39,0\n", "csv", "ERANGE", "float32 range",
     "1e39 does not fit float32")
emit("csv_huge_exponent.csv", "1e999\n", "csv", "ERANGE", "float32 range",
     "overflows even double")
emit("csv_nul.csv", b"1,2\n3,\x004\n", "csv", "EFORMAT", "NUL byte", "binary data")

# ---- vmf_load_matrix ----
emit("matrix_1d.npy", npy_of(np.arange(5, dtype="<f4")), "matrix", "EINVAL", "2-D",
     "a vector, not a matrix")
nanx = np.ones((4, 3), dtype="<f4")
nanx[2, 1] = np.nan
emit("matrix_nan.npy", npy_of(nanx), "matrix", "EINVAL", "row 2, column 1 is NaN",
     "NaN in row 2")
infx = np.ones((4, 3), dtype="<f8")
infx[3, 0] = -np.inf
emit("matrix_inf.npy", npy_of(infx), "matrix", "EINVAL", "row 3, column 0 is infinite",
     "-inf in row 3 (float64)")
bigx = np.ones((2, 2), dtype="<f8")
bigx[1, 1] = 1e300
emit("matrix_range.npy", npy_of(bigx), "matrix", "ERANGE", "outside the float32 range",
     "1e300 does not fit float32")
emit("matrix_strings.npz", npz([("X.npy", npy_of(np.array([["a", "b"]])))]), "matrix",
     "EINVAL", "numeric", "X holds strings")
emit("matrix_y_mismatch.npz",
     npz([("X.npy", npy_of(X)), ("y.npy", npy_of(np.arange(3, dtype="<i4")))]), "matrix",
     "EFORMAT", "y has shape (3,) but X has 4 rows", "3 labels for 4 rows")
emit("matrix_unknown.txt", "1,2\n", "matrix", "EINVAL", "unknown file type",
     "extension is neither .npy, .npz nor .csv")

# ---- model JSON (fed to the model loader by the vmfmm CLI tests) ----
u = [1.0, 0.0, 0.0]
v = [0.0, 1.0, 0.0]


def model(**over):
    m = {"format": "vmfmm-model", "version": 1, "kind": "mixture", "dim": 3,
         "n_components": 2, "tied_kappa": False, "weights": [0.5, 0.5],
         "kappas": [10.0, 20.0], "means": [u, v]}
    m.update(over)
    for k in [k for k, val in m.items() if val is None]:
        del m[k]
    import json
    return json.dumps(m) + "\n"


emit("model_invalid_json.json", model()[:-20] + "\n", "model", "EFORMAT", "JSON",
     "cut off in the middle of an array")
emit("model_wrong_format.json", model(format="vmfmm-checkpoint"), "model", "EFORMAT",
     "format", "\"format\" is not \"vmfmm-model\"")
emit("model_missing_means.json", model(means=None), "model", "EFORMAT", "means",
     "no \"means\"")
emit("model_means_not_unit.json", model(means=[u, [0.0, 2.0, 0.0]]), "model", "EFORMAT",
     "means", "second mean has norm 2")
emit("model_dims_disagree.json", model(means=[u, [0.0, 1.0]]), "model", "EFORMAT", "means",
     "second mean has 2 entries, dim is 3")
emit("model_negative_kappa.json", model(kappas=[10.0, -1.0]), "model", "EFORMAT", "kappas",
     "a negative concentration")
emit("model_weights_count.json", model(weights=[1.0]), "model", "EFORMAT", "weights",
     "one weight for two components")

with open(os.path.join(here, "cases.tsv"), "w") as fp:
    fp.write("# file\tapi\tstatus\tkeyword\twhat is wrong (generated by gen_malformed.py)\n")
    for c in cases:
        fp.write("\t".join(c) + "\n")
print("%d cases" % len(cases))

# README.md: the same table for people.
with open(os.path.join(here, "README.md"), "w") as fp:
    fp.write("""# Malformed inputs

Hostile and broken files for the array readers and the model loader, made by
`gen_malformed.py` (deterministic; re-run it after editing, never edit the
files by hand). `cases.tsv` is the machine-readable table that `test_npy`,
`test_npz` and `test_csv` iterate over (via `tests/core/io_battery.h`): each
case must return the status below with a one-line message that names the file
and contains the keyword, without crashing or leaking under ASan.

The `api` column says what is fed the file: `npy` = `vmf_npy_read`, `npz` =
`vmf_npz_read(path, "X")` (and `vmf_npz_read_mem`), `csv` = `vmf_csv_read`,
`matrix` = `vmf_load_matrix`, `model` = the model JSON loader (`vmfmm predict
--model FILE`, `vmf_mixture_from_json`), for the CLI tests; the keyword of a
`model` case is the field the message should name.

| file | api | status | message contains | what is wrong |
|---|---|---|---|---|
""")
    for c in cases:
        cells = [x.replace("|", "\\|") for x in c]
        fp.write("| `%s` | %s | %s | `%s` | %s |\n" % tuple(cells))
