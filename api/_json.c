/* api._json: a `POST /match` reply's JSON in C: two of its values written byte for byte as pydantic-core's
`to_json` writes them, and its ~300 pieces joined (bench/RESULTS.md, "issue 18, brief w2, session 30").

Each result's explanation (~200 characters) and its distance are written by `pydantic_core.to_json` at ~3.3k and
~1.8k instructions a call (callgrind, a Python loop's call included), ~11 of each a request, most of it the call's
set-up (its keyword defaults, the serialiser chosen for the value). Here each is one METH_O call: ~1.2k and ~0.7k,
of which ~0.6k is any builtin's call from Python.

- `string(s)`: a `str` as a JSON string. pydantic-core (serde_json's escaping) writes `"` and `\` as `\"` and
  `\\`; the control characters U+0000-U+001F as `\b`, `\t`, `\n`, `\f`, `\r` or else `\u00XX` (lower-case hex);
  every other character as its UTF-8 bytes (`/`, DEL and U+2028/U+2029 unescaped). A string holding a surrogate
  (U+D800-U+DFFF) has no UTF-8: pydantic-core raises a ValueError (PydanticSerializationError) around the
  UnicodeEncodeError of `str.encode`; this raises that UnicodeEncodeError itself (a ValueError, the same words).
  The bytes are read as pydantic-core reads them, by `PyUnicode_AsUTF8AndSize` (an ASCII string's in place;
  another's encoded once and kept with the string by CPython, freed with it), eight at a time while none is
  escaped (a ~200-character explanation has none: one copy).
- `km(x)`: a float that is a whole number of metres (`rehabmap.match.round_km`'s), in km: the decimal N / 1000
  for the integer N with N / 1000.0 == x (checked, below 1e9 km), trailing zeros dropped, `.0` when whole, a `-`
  for a negative one and for -0.0. That decimal is the shortest one that reads back as x (two multiples of 0.001
  below 1e9 are far more than a double's spacing apart, so no other of as few digits reads back as x), which is
  what pydantic-core writes, in plain notation in this range. Any other float (not whole metres, 1e9 km or more,
  NaN, infinities) gives None: the caller writes it with `to_json`.
- `join(pieces)`: `b"".join(pieces)` for a list of bytes (anything else refused: TypeError). CPython's join asks
  each piece for its buffer and releases it (~90 instructions a piece, ~27k a reply); this reads each bytes
  object's size and copies it (~13k a reply, most of it the copy).

- `cut(text, names)`: a record's JSON (`api.record_json.cut`) cut at each hole's `"name":null`, the null left out,
  in one pass over the text: each place of `":null` is tested against the names (a JSON string's own quotes are
  escaped, so a name's key with its null can only be the key itself); the holes' keys met must be the names, each
  once, in order, or it gives None (the caller names the hole). Python's `find` and `count` of each hole took
  ~15 us a record (~0.9 us a scan of ~900 bytes); this ~2.5 us.

tests/api/test_json_c.py holds the writers to `pydantic_core.to_json` (every code point, random strings, every
metre to 2,000 km and random floats), `join` to `b"".join` (random lists) and `cut` to the plain rule (random
documents), and refuses every wrong call (a TypeError, never a read out of bounds). Only the long-stable C API is
used; the GIL stays held (a call is well under a microsecond). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* What follows the backslash for each byte that is escaped; 0: written as it is. 'u': `\u00XX`. A UTF-8 string's
bytes from 0x80 up are parts of characters above U+007F, written as they are. */
static const unsigned char ESCAPE[256] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
    0, 0, '"', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '\\', 0, 0, 0,
};

static const char HEX[] = "0123456789abcdef";

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Whether any of the eight bytes in `word` is escaped: below 0x20, `"` or `\`. Each test is the exact "some
byte" form of the bit tricks (a borrow may mark a later byte falsely, never hide the first one): a byte below n
is (word - n * ONES) & ~word & HIGHS, a byte equal to c is one below 1 in word ^ (c * ONES). */
static int any_escaped(uint64_t word)
{
    uint64_t quote = word ^ ('"' * ONES), backslash = word ^ ('\\' * ONES);
    return ((((word - 0x20 * ONES) & ~word) | ((quote - ONES) & ~quote) | ((backslash - ONES) & ~backslash))
            & HIGHS) != 0;
}

static PyObject *escaped(const unsigned char *text, Py_ssize_t size)
{
    Py_ssize_t extra = 0, first = 0;
    for (uint64_t word; first + 8 <= size; first += 8) {  /* to the first eight holding an escaped byte */
        memcpy(&word, text + first, 8);
        if (any_escaped(word))
            break;
    }
    for (Py_ssize_t i = first; i < size; i++) {
        unsigned char e = ESCAPE[text[i]];
        if (e)
            extra += e == 'u' ? 5 : 1;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, size + extra + 2);
    if (out == NULL)
        return NULL;
    /* The bytes before `first` as they are, the rest escaped: written by the same reading that sized the bytes. */
    char *at = PyBytes_AS_STRING(out);
    *at++ = '"';
    if (extra == 0) {
        memcpy(at, text, (size_t)size);
        at += size;
    } else {
        memcpy(at, text, (size_t)first);
        at += first;
        for (Py_ssize_t i = first; i < size; i++) {
            unsigned char c = text[i], e = ESCAPE[c];
            if (!e) {
                *at++ = (char)c;
                continue;
            }
            *at++ = '\\';
            *at++ = (char)e;
            if (e == 'u') {
                *at++ = '0';
                *at++ = '0';
                *at++ = HEX[c >> 4];
                *at++ = HEX[c & 15];
            }
        }
    }
    *at = '"';
    return out;
}

static PyObject *string(PyObject *self, PyObject *s)
{
    if (!PyUnicode_Check(s)) {
        PyErr_Format(PyExc_TypeError, "string() takes a str, not %.100s", Py_TYPE(s)->tp_name);
        return NULL;
    }
    Py_ssize_t size;
    const char *text = PyUnicode_AsUTF8AndSize(s, &size);  /* a surrogate: UnicodeEncodeError, as `s.encode()` */
    return text == NULL ? NULL : escaped((const unsigned char *)text, size);
}

PyDoc_STRVAR(string_doc, "string(s, /)\n--\n\n"
             "`s` as a JSON string, the bytes `pydantic_core.to_json(s)` gives (api/_json.c).");

static PyObject *km(PyObject *self, PyObject *value)
{
    if (!PyFloat_Check(value)) {
        PyErr_Format(PyExc_TypeError, "km() takes a float, not %.100s", Py_TYPE(value)->tp_name);
        return NULL;
    }
    double x = PyFloat_AS_DOUBLE(value);
    int negative = signbit(x) != 0;
    if (negative)
        x = -x;
    if (!(x < 1e9))  /* NaN too */
        Py_RETURN_NONE;
    double scaled = nearbyint(x * 1000.0);
    long long n = (long long)scaled;
    if ((double)n / 1000.0 != x)
        Py_RETURN_NONE;
    /* Written from the right: the metres' digits (dropping the fraction's trailing zeros, or `0` when whole), the
    point, the km's digits (at least one), the sign. */
    char text[24];  /* "-999999999.999" at most */
    char *at = text + sizeof text;
    long long whole = n / 1000;
    int fraction = (int)(n % 1000), digits = 3;
    if (fraction == 0) {
        *--at = '0';
    } else {
        for (; fraction % 10 == 0; fraction /= 10)
            digits--;
        for (; digits > 0; digits--, fraction /= 10)
            *--at = (char)('0' + fraction % 10);
    }
    *--at = '.';
    do {
        *--at = (char)('0' + whole % 10);
        whole /= 10;
    } while (whole > 0);
    if (negative)
        *--at = '-';
    return PyBytes_FromStringAndSize(at, text + sizeof text - at);
}

PyDoc_STRVAR(km_doc, "km(x, /)\n--\n\n"
             "A distance in whole metres, in km, as the bytes `pydantic_core.to_json(x)` gives; None for any other "
             "float (api/_json.c).");

static PyObject *join(PyObject *self, PyObject *pieces)
{
    if (!PyList_Check(pieces)) {
        PyErr_Format(PyExc_TypeError, "join() takes a list, not %.100s", Py_TYPE(pieces)->tp_name);
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(pieces), size = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *piece = PyList_GET_ITEM(pieces, i);
        if (!PyBytes_Check(piece)) {
            PyErr_Format(PyExc_TypeError, "join() takes a list of bytes, not of %.100s", Py_TYPE(piece)->tp_name);
            return NULL;
        }
        if (PyBytes_GET_SIZE(piece) > PY_SSIZE_T_MAX - size) {
            PyErr_SetString(PyExc_OverflowError, "join(): the pieces are longer than a bytes object can be");
            return NULL;
        }
        size += PyBytes_GET_SIZE(piece);
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL)
        return NULL;
    char *at = PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < count; i++) {  /* no Python code runs between the two reads: the list is as sized */
        PyObject *piece = PyList_GET_ITEM(pieces, i);
        memcpy(at, PyBytes_AS_STRING(piece), (size_t)PyBytes_GET_SIZE(piece));
        at += PyBytes_GET_SIZE(piece);
    }
    return out;
}

PyDoc_STRVAR(join_doc, "join(pieces, /)\n--\n\n"
             "`b\"\".join(pieces)` for a list of bytes, without asking each piece for its buffer (api/_json.c).");

/* Which of the names the text's key ending at `at` (the `"` of `":null`) is, as in `"name":null`; -1 for none. A
name holds no `"`, so at most one ends there. */
static Py_ssize_t hole_at(const char *text, Py_ssize_t at, PyObject *names)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        Py_ssize_t length = PyBytes_GET_SIZE(name);
        if (at > length && text[at - length - 1] == '"' &&
            memcmp(text + at - length, PyBytes_AS_STRING(name), (size_t)length) == 0)
            return i;
    }
    return -1;
}

static PyObject *cut(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyTuple_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "cut() takes the text (bytes) and the holes' names (a tuple of bytes)");
        return NULL;
    }
    PyObject *names = args[1];
    Py_ssize_t holes = PyTuple_GET_SIZE(names);
    for (Py_ssize_t i = 0; i < holes; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (!PyBytes_Check(name) || PyBytes_GET_SIZE(name) == 0 ||
            memchr(PyBytes_AS_STRING(name), '"', (size_t)PyBytes_GET_SIZE(name)) != NULL) {
            PyErr_SetString(PyExc_TypeError, "cut(): each hole's name is bytes, not empty and without a '\"'");
            return NULL;
        }
    }
    const char *text = PyBytes_AS_STRING(args[0]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]), start = 0, next = 0;
    PyObject *pieces = PyTuple_New(holes + 1);
    if (pieces == NULL)
        return NULL;
    /* Every `"name":null` ends in `":null`: at each place of that every name is tested, so the holes' keys met are
    every one the text holds, in its order; they must be the holes, each once, in the order given. */
    const char *found = memmem(text, (size_t)size, "\":null", 6);
    for (; found != NULL; found = memmem(found + 6, (size_t)(text + size - found - 6), "\":null", 6)) {
        Py_ssize_t at = found - text, hole = hole_at(text, at, names);
        if (hole < 0)
            continue;
        if (hole != next)  /* a hole's key again, or out of order */
            break;
        PyObject *piece = PyBytes_FromStringAndSize(text + start, at + 2 - start);  /* up to its key's ':' */
        if (piece == NULL) {
            Py_DECREF(pieces);
            return NULL;
        }
        PyTuple_SET_ITEM(pieces, next++, piece);
        start = at + 6;
    }
    if (found != NULL || next != holes) {  /* the caller says which hole, by the same rule in Python */
        Py_DECREF(pieces);
        Py_RETURN_NONE;
    }
    PyObject *last = PyBytes_FromStringAndSize(text + start, size - start);
    if (last == NULL) {
        Py_DECREF(pieces);
        return NULL;
    }
    PyTuple_SET_ITEM(pieces, holes, last);
    return pieces;
}

PyDoc_STRVAR(cut_doc, "cut(text, names, /)\n--\n\n"
             "`text` cut after each hole's `\"name\":` and its `null` left out: the pieces, one more than the names; "
             "None unless the text holds each name's `\"name\":null` once, in the order given (api/_json.c).");

static PyMethodDef methods[] = {
    {"string", (PyCFunction)string, METH_O, string_doc},
    {"km", (PyCFunction)km, METH_O, km_doc},
    {"join", (PyCFunction)join, METH_O, join_doc},
    {"cut", (PyCFunction)(void (*)(void))cut, METH_FASTCALL, cut_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "api._json",
    "A reply's strings and distances written as JSON in C, as pydantic-core writes them (see _json.c).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__json(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddStringConstant(m, "SOURCE_SHA256", SOURCE_SHA256) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
