/* search._pass: the row loops of a match's radius pass, in C (bench/RESULTS.md, sessions 27 and 28).

Each NumPy step over a box's ~3.3k rows costs 12-50k instructions, and the pass was ~25 such steps; the same
tests as one loop cost ~18 instructions a row read (the filters) and ~33 a row tested (the radius test), each loop
compiled once for each set of tests a call can ask for (measured). Two row loops live here, and nowhere else:

- `kept_in_runs` / `kept_of`: the first stage of
  `search.columns.ServiceColumns.kept`, the tests of a row's packed flags word (status and superseded bits, type
  bits, the gender refused, the catchment group's entry in the home's `covering` table) and of its needs-and-ages
  word (the needs asked, the age), over runs of positions (a box's runs per type and row of cells) or over an
  array of rows;
- `near`: the radius test of `search.nearness`: each kept row's cosine with the home, computed with the same
  floating-point operations in the same order as NumPy did them (x * a, then + y * b, then + z * c, with
  `nearness.unit_vector`'s a, b, c; built with -ffp-contract=off, so no multiply-add is fused and the floats
  are NumPy's bit for bit), the rows kept whose cosine is above the
  radius's less `MARGIN`, those below its plus `MARGIN` named as unsure (Python measures them), and the
  rows' located group looked up in a table.

Three more serve the answers and the reading of cells (session 28), each its own rule: `reach`, the rows that can
be among the k nearest, told by their cosines (the k-th greatest less `MARGIN`, held as the rows go, no sort);
`first_k`, the order of the few rows measured (distance, then id rank; or effective distance first), the same
float comparisons as NumPy's `lexsort`; `cell_runs`, a grid's cells (those outside a box) as runs of its order,
and `box_runs` (session 30), a box's rows as a run per type and row of cells, then such cells outside it, each
with the positions its runs hold (the room `kept_in_runs` needs). Two build a home's catchment table once a match
(session 30): `boxes_holding`, the comparisons of the home's point with nearby polygons' bounding and inner boxes
(`search.polygons`), and `union`, the home's areas' tables ORed and the polygons holding it set.
The distances themselves stay NumPy's `haversine_km` (C's libm and NumPy's sines may differ in the last bit).

Arrays come in through the buffer protocol (NumPy arrays, C-contiguous); each one's item size, kind and length
is checked, and every index read from them is checked against the array it indexes: a wrong call raises
ValueError, it never reads or writes out of bounds. Only the long-stable C API is used. The GIL stays held: a
call takes tens of microseconds, and letting it go would let another thread's turn (up to the 5 ms switch
interval) delay the match. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <limits.h>
#include <math.h>

/* Where the fields sit in the words (search/columns.py says why; it checks these against its own at import). */
#define CATCHMENT_SHIFT 16
#define MIN_AGE_SHIFT 32
#define MAX_AGE_SHIFT 48

enum kind { INTEGER, FLOAT, BOOL };

/* Up to this many buffers are held during one call; released together. */
#define MAX_VIEWS 8

typedef struct {
    Py_buffer views[MAX_VIEWS];
    int held;
} Views;

static void release(Views *v)
{
    for (int i = 0; i < v->held; i++)
        PyBuffer_Release(&v->views[i]);
    v->held = 0;
}

/* A call given other than `count` arguments is refused (TypeError), as each function's first step. */
static int takes(const char *name, Py_ssize_t nargs, Py_ssize_t count)
{
    if (nargs == count)
        return 0;
    PyErr_Format(PyExc_TypeError, "%s takes %zd arguments", name, count);
    return -1;
}

/* The views released and NULL returned, the error already set (by `view_of`, a conversion, an allocation). */
static PyObject *dropped(Views *v)
{
    release(v);
    return NULL;
}

/* A call whose arguments `wrong` describes is refused (ValueError), every view released: NULL to return. */
static PyObject *refused(Views *v, const char *wrong)
{
    release(v);
    PyErr_SetString(PyExc_ValueError, wrong);
    return NULL;
}

static int kind_of(const Py_buffer *view)
{
    const char *format = view->format == NULL ? "B" : view->format;
    char last = format[0] == '\0' ? 'B' : format[strlen(format) - 1];
    if (format[0] != '\0' && strchr("@=<!", format[0]) == NULL && strlen(format) > 1)
        return -1; /* a struct or a repeat count: not one plain item */
    if (strchr("bBhHiIlLqQnN", last) != NULL)
        return INTEGER;
    if (last == 'd')
        return FLOAT;
    if (last == '?')
        return BOOL;
    return -1;
}

/* A C-contiguous buffer of `obj` with items of this kind and size, of `ndim` dimensions (2: `columns` a row);
   NULL (with ValueError set) when it is not one. */
static Py_buffer *view_of(Views *v, PyObject *obj, const char *name, enum kind kind, Py_ssize_t itemsize,
                          int writable, int ndim, Py_ssize_t columns)
{
    Py_buffer *view = &v->views[v->held];
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s: not a C-contiguous%s array", name, writable ? " writable" : "");
        return NULL;
    }
    v->held++;
    if (view->ndim != ndim || view->itemsize != itemsize || kind_of(view) != (int)kind
            || (ndim == 2 && view->shape[1] != columns)) {
        const char *kind_name = kind == INTEGER ? "integer" : kind == FLOAT ? "float" : "bool";
        if (ndim == 2)
            PyErr_Format(PyExc_ValueError, "%s: expected 2 dimensions of %zd-byte %s items in rows of %zd", name,
                         itemsize, kind_name, columns);
        else
            PyErr_Format(PyExc_ValueError, "%s: expected %d dimension(s) of %zd-byte %s items", name, ndim, itemsize,
                         kind_name);
        return NULL;
    }
    return view;
}

static Py_ssize_t length(const Py_buffer *view)
{
    return view->ndim == 0 ? 1 : view->shape[0];
}

/* --- the flags-word tests --------------------------------------------------------------------------------- */

typedef struct {
    uint64_t status_mask, status;   /* (flags & status_mask) == status */
    int typed;                      /* whether the type is tested */
    uint64_t type_bits;             /* flags & type_bits */
    int gendered;                   /* whether the gender is tested */
    uint64_t gender_mask, refused;  /* (flags & gender_mask) != refused */
    const uint8_t *covering;        /* covering[flags >> CATCHMENT_SHIFT], when not NULL */
    uint64_t groups;                /* covering's length */
    uint64_t needs_mask, needs;     /* (word & needs_mask) == needs */
    int ages;                       /* whether the age is tested */
    uint64_t age;                   /* the age asked + 1, as the word stores its bounds */
    const uint64_t *flags, *words;  /* per position */
} Tests;

/* The loops over rows come in variants, one for each set of tests a call can ask for, chosen once a call
   (`variant_of`): each variant's tests are constants the compiler folds, so its loop holds only the tests it makes
   and their values, in registers, and branches on no test's being asked or not (bench/RESULTS.md, session 28). A
   variant is a sum of these: */
#define TYPED 1     /* the type bits are tested */
#define GENDERED 2  /* the gender refused is tested */
#define COVERED 4   /* the covering table is read */
#define NEEDS 8     /* the needs-and-ages word is read, its needs tested */
#define AGES 16     /* the word is read, its needs and its ages tested (never with NEEDS: the variants are 0 to 23) */

static int variant_of(const Tests *t)
{
    return (t->typed ? TYPED : 0) | (t->gendered ? GENDERED : 0) | (t->covering != NULL ? COVERED : 0)
        | (t->ages ? AGES : t->needs_mask || t->needs ? NEEDS : 0);
}

/* `return CALL(v)` for the variant `which`, v a constant each time: one copy of the loop a variant. */
#define EACH_VARIANT(CALL) \
    switch (which) { \
    case 0: return CALL(0); case 1: return CALL(1); case 2: return CALL(2); case 3: return CALL(3); \
    case 4: return CALL(4); case 5: return CALL(5); case 6: return CALL(6); case 7: return CALL(7); \
    case 8: return CALL(8); case 9: return CALL(9); case 10: return CALL(10); case 11: return CALL(11); \
    case 12: return CALL(12); case 13: return CALL(13); case 14: return CALL(14); case 15: return CALL(15); \
    case 16: return CALL(16); case 17: return CALL(17); case 18: return CALL(18); case 19: return CALL(19); \
    case 20: return CALL(20); case 21: return CALL(21); case 22: return CALL(22); default: return CALL(23); \
    }

#define INLINE static inline __attribute__((always_inline))
#define NOINLINE __attribute__((noinline))

/* 1 when the row at p passes the variant's tests, 0 when not, -1 when its catchment group lies outside the table.
   `t` comes by value: inlined into a loop, its fields are locals there, and only the variant's stay live. */
INLINE int passes(const Tests t, Py_ssize_t p, const int which)
{
    uint64_t f = t.flags[p];
    if ((f & t.status_mask) != t.status)
        return 0;
    if ((which & TYPED) && !(f & t.type_bits))
        return 0;
    if ((which & GENDERED) && (f & t.gender_mask) == t.refused)
        return 0;
    if (which & COVERED) {
        uint64_t group = f >> CATCHMENT_SHIFT;
        if (group >= t.groups)
            return -1;
        if (!t.covering[group])
            return 0;
    }
    if (which & (NEEDS | AGES)) {
        uint64_t w = t.words[p];
        if ((w & t.needs_mask) != t.needs)
            return 0;
        if ((which & AGES) && (((w >> MIN_AGE_SHIFT) & 0xFFFF) > t.age || (w >> MAX_AGE_SHIFT) < t.age))
            return 0;
    }
    return 1;
}

/* The positions of the runs whose rows pass, written to o: how many, or -1 as `passes` says. */
INLINE Py_ssize_t in_runs(const Tests t, const int64_t *b, const int64_t *e, Py_ssize_t runs, int64_t *o,
                          const int which)
{
    Py_ssize_t count = 0;
    for (Py_ssize_t j = 0; j < runs; j++) {
        const int64_t end = e[j];
        for (int64_t p = b[j]; p < end; p++) {
            o[count] = p; /* written always (first: measured fewer instructions), kept by counting it */
            int ok = passes(t, (Py_ssize_t)p, which);
            if (ok < 0)
                return -1;
            count += ok;
        }
    }
    return count;
}

/* Not inlined into its caller (nor are the other two loops'), so that the variant's loop has the registers to itself
   (measured: fewer instructions). */
static NOINLINE Py_ssize_t kept_in_runs_loop(const Tests *t, const int64_t *b, const int64_t *e, Py_ssize_t runs,
                                             int64_t *o)
{
    const int which = variant_of(t);
    const Tests held = *t;
#define IN_RUNS(v) in_runs(held, b, e, runs, o, v)
    EACH_VARIANT(IN_RUNS)
#undef IN_RUNS
}

/* Where in r (n rows, each checked within the tests' rows) the rows passing are, written to o: how many; -1 as
   `passes` says, -2 for a row outside. */
INLINE Py_ssize_t of_rows(const Tests t, Py_ssize_t rows, const int64_t *r, Py_ssize_t n, int64_t *o,
                          const int which)
{
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if ((uint64_t)r[i] >= (uint64_t)rows) /* a negative one wraps above the rows */
            return -2;
        o[count] = i;
        int ok = passes(t, (Py_ssize_t)r[i], which);
        if (ok < 0)
            return -1;
        count += ok;
    }
    return count;
}

static NOINLINE Py_ssize_t kept_of_loop(const Tests *t, Py_ssize_t rows, const int64_t *r, Py_ssize_t n, int64_t *o)
{
    const int which = variant_of(t);
    const Tests held = *t;
#define OF_ROWS(v) of_rows(held, rows, r, n, o, v)
    EACH_VARIANT(OF_ROWS)
#undef OF_ROWS
}

static int as_u64(PyObject *obj, const char *name, uint64_t *out)
{
    unsigned long long value = PyLong_AsUnsignedLongLong(obj);
    if (value == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s: expected an int from 0 to 2**64 - 1", name);
        return -1;
    }
    *out = (uint64_t)value;
    return 0;
}

/* The arguments both functions share, from args[0]: flags, words, status_mask, status, type_bits, gender_mask,
   refused, covering (or None), needs_mask, needs, age (or None). 11 of them. */
#define TEST_ARGS 11

static int tests_of(Tests *t, Views *v, PyObject *const *args, Py_ssize_t *rows)
{
    Py_buffer *flags = view_of(v, args[0], "flags", INTEGER, 8, 0, 1, 0);
    if (flags == NULL)
        return -1;
    Py_buffer *words = view_of(v, args[1], "words", INTEGER, 8, 0, 1, 0);
    if (words == NULL)
        return -1;
    if (length(words) != length(flags)) {
        PyErr_SetString(PyExc_ValueError, "words: not one a row of flags");
        return -1;
    }
    t->flags = flags->buf;
    t->words = words->buf;
    *rows = length(flags);
    t->typed = args[4] != Py_None;
    t->gendered = args[6] != Py_None;
    t->type_bits = t->refused = 0;
    if (as_u64(args[2], "status_mask", &t->status_mask) < 0 || as_u64(args[3], "status", &t->status) < 0
            || (t->typed && as_u64(args[4], "type_bits", &t->type_bits) < 0)
            || as_u64(args[5], "gender_mask", &t->gender_mask) < 0
            || (t->gendered && as_u64(args[6], "refused", &t->refused) < 0))
        return -1;
    t->covering = NULL;
    t->groups = 0;
    if (args[7] != Py_None) {
        Py_buffer *covering = view_of(v, args[7], "covering", BOOL, 1, 0, 1, 0);
        if (covering == NULL)
            return -1;
        t->covering = covering->buf;
        t->groups = (uint64_t)length(covering);
    }
    if (as_u64(args[8], "needs_mask", &t->needs_mask) < 0 || as_u64(args[9], "needs", &t->needs) < 0)
        return -1;
    t->ages = args[10] != Py_None;
    t->age = 0;
    if (t->ages) {
        int overflow;
        long long age = PyLong_AsLongLongAndOverflow(args[10], &overflow);
        if (age == -1 && PyErr_Occurred())
            return -1;
        if (overflow)
            age = overflow < 0 ? LLONG_MIN : LLONG_MAX;
        /* The word holds each bound + 1, from 0 to 0xFFFF, and NumPy compares them with age + 1 as numbers: an
           age + 1 above 0xFFFF is below no maximum, so it is held at 0x10000; one below 0 is above no
           minimum, so no row passes (a status test no word meets). */
        if (age < -1) {
            t->status_mask = 0;
            t->status = 1;
        } else {
            t->age = age >= 0xFFFF ? 0x10000 : (uint64_t)(age + 1);
        }
    }
    return 0;
}

static PyObject *count_or_error(int failed, Py_ssize_t count)
{
    if (failed) {
        PyErr_SetString(PyExc_ValueError, "covering: a row's catchment group lies outside the table");
        return NULL;
    }
    return PyLong_FromSsize_t(count);
}

/* The positions runs hold, with each run checked to lie within `rows` positions (0 <= begin <= end <= rows);
   -1 with ValueError set when one does not. */
static Py_ssize_t runs_total(const Py_buffer *begins, const Py_buffer *ends, Py_ssize_t rows)
{
    Py_ssize_t runs = length(begins), total = 0;
    if (length(ends) != runs) {
        PyErr_SetString(PyExc_ValueError, "ends: not one a run of begins");
        return -1;
    }
    const int64_t *b = begins->buf, *e = ends->buf;
    for (Py_ssize_t j = 0; j < runs; j++) {
        if (b[j] < 0 || b[j] > e[j] || e[j] > rows) {
            PyErr_Format(PyExc_ValueError, "run %zd: not within the rows (0 <= begin <= end <= %zd)", j, rows);
            return -1;
        }
        total += (Py_ssize_t)(e[j] - b[j]);
    }
    return total;
}

/* The start `kept_in_runs` and `kept_of` share: their count of arguments checked, the tests from the first ones,
   and the `extra` arrays after them (of 8-byte integers, one dimension, the last one written to) viewed into
   `arrays`; -1 with the error set and every view released when one is wrong. */
static int kept_arguments(const char *name, PyObject *const *args, Py_ssize_t nargs, const char *const *names,
                          int extra, Views *v, Tests *t, Py_ssize_t *rows, Py_buffer **arrays)
{
    if (takes(name, nargs, TEST_ARGS + extra) < 0)
        return -1;
    if (tests_of(t, v, args, rows) < 0) {
        release(v);
        return -1;
    }
    for (int i = 0; i < extra; i++) {
        arrays[i] = view_of(v, args[TEST_ARGS + i], names[i], INTEGER, 8, i == extra - 1, 1, 0);
        if (arrays[i] == NULL) {
            release(v);
            return -1;
        }
    }
    return 0;
}

PyDoc_STRVAR(kept_in_runs_doc,
"kept_in_runs(flags, words, status_mask, status, type_bits, gender_mask, refused, covering, needs_mask, needs,\n"
"             age, begins, ends, out) -> int\n\n"
"Writes into `out` the positions begins[j] .. ends[j]-1 of every run j (runs in the order given, ascending\n"
"within each) whose row passes the tests, and returns how many: a row passes when (flags & status_mask) ==\n"
"status; flags & type_bits, unless type_bits is None; (flags & gender_mask) != refused, unless refused is None;\n"
"covering[flags >> 16], unless covering is None; (words & needs_mask) == needs; and, unless age is None,\n"
"its words' minimum age + 1 (bits 32-47) <= age + 1 <= its maximum age + 1 (bits 48-63).");

static PyObject *kept_in_runs(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *const names[] = {"begins", "ends", "out"};
    Views v = {.held = 0};
    Tests t;
    Py_ssize_t rows;
    Py_buffer *arrays[3];
    if (kept_arguments("kept_in_runs", args, nargs, names, 3, &v, &t, &rows, arrays) < 0)
        return NULL;
    Py_buffer *begins = arrays[0], *ends = arrays[1], *out = arrays[2];
    Py_ssize_t runs = length(begins), room = length(out);
    Py_ssize_t total = runs_total(begins, ends, rows);
    if (total < 0) {
        return dropped(&v);
    }
    if (room < total) {
        release(&v);
        PyErr_Format(PyExc_ValueError, "out: %zd places for %zd positions", room, total);
        return NULL;
    }
    Py_ssize_t count = kept_in_runs_loop(&t, begins->buf, ends->buf, runs, out->buf);
    release(&v);
    return count_or_error(count == -1, count);
}

PyDoc_STRVAR(kept_of_doc,
"kept_of(flags, words, status_mask, status, type_bits, gender_mask, refused, covering, needs_mask, needs, age,\n"
"        rows, out) -> int\n\n"
"Writes into `out` where in `rows` the rows passing the tests (as `kept_in_runs` tells them) are, ascending,\n"
"and returns how many.");

static PyObject *kept_of(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *const names[] = {"rows", "out"};
    Views v = {.held = 0};
    Tests t;
    Py_ssize_t rows;
    Py_buffer *arrays[2];
    if (kept_arguments("kept_of", args, nargs, names, 2, &v, &t, &rows, arrays) < 0)
        return NULL;
    Py_buffer *of = arrays[0], *out = arrays[1];
    Py_ssize_t n = length(of);
    if (length(out) < n) {
        release(&v);
        PyErr_Format(PyExc_ValueError, "out: %zd places for %zd rows", length(out), n);
        return NULL;
    }
    Py_ssize_t count = kept_of_loop(&t, rows, of->buf, n, out->buf);
    release(&v);
    if (count == -2) {
        PyErr_Format(PyExc_ValueError, "rows: a row outside 0 .. %zd", rows - 1);
        return NULL;
    }
    return count_or_error(count == -1, count);
}

/* --- the radius test ------------------------------------------------------------------------------------- */

static int as_double(PyObject *obj, const char *name, double *out)
{
    *out = PyFloat_AsDouble(obj);
    if (*out == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s: expected a float", name);
        return -1;
    }
    return 0;
}

/* What the radius test reads and writes (`near`'s arguments, checked). */
typedef struct {
    const double *r;           /* records: x, y, z, located group */
    Py_ssize_t rows;           /* records' rows */
    const int64_t *p;          /* at */
    Py_ssize_t n;              /* at's length */
    double a, b, c, floor, sure;
    int64_t *o;                /* out_at */
    double *oc;                /* out_cosines */
    uint8_t *oi;               /* out_in, with a table */
    const uint8_t *table;      /* groups */
    double table_length;
    const int8_t *type;        /* types, with counts */
    int64_t *counts;           /* by_type */
    Py_ssize_t type_count;
} Near;

/* The radius test's variants (as the filters', `EACH_VARIANT`): with no groups table, with one, with one and the
   counts by type. */
#define TABLE 1
#define COUNTS 2

/* Adds `place` to the list of unsure places (rare: a row on the radius); -1 with the error set when it cannot. */
static __attribute__((noinline, cold)) int note_unsure(PyObject *unsure, Py_ssize_t place)
{
    PyObject *item = PyLong_FromSsize_t(place);
    int failed = item == NULL || PyList_Append(unsure, item) < 0;
    Py_XDECREF(item);
    return failed ? -1 : 0;
}

/* How many rows are kept (written to the outputs), or -1: with *wrong set for a wrong call, else with the error
   set. Every row's position, cosine and flag are written at the place the next kept row goes, so writing them
   takes no branch; a row is kept by counting it (a branch on the cosine: measured fewer instructions than a flag). */
INLINE Py_ssize_t near_loop(const Near x, PyObject *unsure, const char **wrong, const int which)
{
    Py_ssize_t count = 0;
#pragma GCC unroll 4 /* measured: 2k instructions fewer a match at 100k; the filters' loops gain nothing from it */
    for (Py_ssize_t i = 0; i < x.n; i++) {
        uint64_t position = (uint64_t)x.p[i]; /* a negative one wraps above the rows */
        if (position >= (uint64_t)x.rows) {
            *wrong = "at: a position outside the records";
            return -1;
        }
        const double *record = x.r + 4 * position;
        /* As NumPy computed them: three products and two sums, in this order, none fused. */
        double cosine = record[0] * x.a;
        cosine += record[1] * x.b;
        cosine += record[2] * x.c;
        x.o[count] = (int64_t)position; /* before the next row's position is read: `at` may be `out_at` */
        x.oc[count] = cosine;
        if (which & TABLE) {
            double group = record[3];
            if (!(group >= 0.0 && group < x.table_length)) {
                *wrong = "records: a located group outside the groups table";
                return -1;
            }
            uint8_t in = x.table[(int64_t)group]; /* within [0, length): the signed conversion is one instruction */
            x.oi[count] = in;
            if ((which & COUNTS) && in) {
                uint64_t t = (uint64_t)(int64_t)x.type[position];
                if (t >= (uint64_t)x.type_count) {
                    *wrong = "types: a type outside by_type";
                    return -1;
                }
                x.counts[t]++;
            }
        }
        if (cosine > x.floor) {
            if (__builtin_expect(cosine < x.sure, 0) && note_unsure(unsure, count) < 0)
                return -1;
            count++;
        }
    }
    return count;
}

static NOINLINE Py_ssize_t near_variant(const Near *x, PyObject *unsure, const char **wrong)
{
    const Near held = *x;
    switch (x->table == NULL ? 0 : x->counts == NULL ? TABLE : TABLE | COUNTS) {
    case 0: return near_loop(held, unsure, wrong, 0);
    case TABLE: return near_loop(held, unsure, wrong, TABLE);
    default: return near_loop(held, unsure, wrong, TABLE | COUNTS);
    }
}

PyDoc_STRVAR(near_doc,
"near(records, at, a, b, c, floor, sure, out_at, out_cosines, groups, out_in, types, by_type)\n"
"    -> (count, unsure)\n\n"
"For each position p of `at`, in order: the cosine of the row's record (records[p]: x, y, z, located group)\n"
"with the point of unit vector (a, b, c), each operation rounded once (x * a, then + y * b, then\n"
"+ z * c). The rows whose cosine is above `floor` are written, in order, to `out_at` (their positions),\n"
"`out_cosines` and, with a `groups` table, `out_in` (groups[located group]); `count` is how many, and\n"
"`unsure` lists the places in those outputs of the ones whose cosine is below `sure`. With `types` (per\n"
"position, its type number) and `by_type`, each row of `at` in a group of the table (within the radius or not)\n"
"adds one to by_type[its type]. `out_at` may be `at` itself.");

static PyObject *near(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (takes("near", nargs, 13) < 0)
        return NULL;
    Views v = {.held = 0};
    double a, b, c, floor, sure;
    Py_buffer *records, *at, *out_at, *out_cos, *groups = NULL, *out_in = NULL, *types = NULL, *by_type = NULL;
    if ((records = view_of(&v, args[0], "records", FLOAT, 8, 0, 2, 4)) == NULL
            || (at = view_of(&v, args[1], "at", INTEGER, 8, 0, 1, 0)) == NULL
            || as_double(args[2], "a", &a) < 0 || as_double(args[3], "b", &b) < 0 || as_double(args[4], "c", &c) < 0
            || as_double(args[5], "floor", &floor) < 0 || as_double(args[6], "sure", &sure) < 0
            || (out_at = view_of(&v, args[7], "out_at", INTEGER, 8, 1, 1, 0)) == NULL
            || (out_cos = view_of(&v, args[8], "out_cosines", FLOAT, 8, 1, 1, 0)) == NULL
            || (args[9] != Py_None && (groups = view_of(&v, args[9], "groups", BOOL, 1, 0, 1, 0)) == NULL)
            || (args[9] != Py_None && (out_in = view_of(&v, args[10], "out_in", BOOL, 1, 1, 1, 0)) == NULL)
            || (args[11] != Py_None && (types = view_of(&v, args[11], "types", INTEGER, 1, 0, 1, 0)) == NULL)
            || (args[11] != Py_None && (by_type = view_of(&v, args[12], "by_type", INTEGER, 8, 1, 1, 0)) == NULL)) {
        return dropped(&v);
    }
    Py_ssize_t n = length(at), rows = records->shape[0];
    if (length(out_at) < n || length(out_cos) < n || (out_in != NULL && length(out_in) < n)) {
        release(&v);
        PyErr_Format(PyExc_ValueError, "out_at, out_cosines, out_in: fewer places than the %zd of at", n);
        return NULL;
    }
    if (types != NULL && (groups == NULL || length(types) != rows))
        return refused(&v, "types: needs a groups table, and one type a record");
    Near x = {
        .r = records->buf, .rows = rows, .p = at->buf, .n = n, .a = a, .b = b, .c = c, .floor = floor, .sure = sure,
        .o = out_at->buf, .oc = out_cos->buf, .oi = out_in == NULL ? NULL : out_in->buf,
        .table = groups == NULL ? NULL : groups->buf, .table_length = groups == NULL ? 0.0 : (double)length(groups),
        .type = types == NULL ? NULL : types->buf, .counts = by_type == NULL ? NULL : by_type->buf,
        .type_count = by_type == NULL ? 0 : length(by_type),
    };
    PyObject *unsure = PyList_New(0);
    if (unsure == NULL) {
        return dropped(&v);
    }
    const char *wrong = NULL;
    Py_ssize_t count = near_variant(&x, unsure, &wrong);
    release(&v);
    if (count < 0) {
        Py_DECREF(unsure);
        if (wrong != NULL)
            PyErr_SetString(PyExc_ValueError, wrong);
        return NULL;
    }
    return Py_BuildValue("(nN)", count, unsure);
}

/* --- the candidates' selection and their order ------------------------------------------------------------ */

/* At most this many greatest cosines are held on the stack; a larger k (a caller's limit) takes the heap. */
#define HELD_ON_STACK 64

PyDoc_STRVAR(reach_doc,
"reach(cosines, at, k, margin, among, only_among, out_at, out_in) -> (count, bounded)\n\n"
"The rows that can be among the k nearest, told by their cosines (`search.nearness`): with `among` (a bool a\n"
"row, or None for every row), the bound is the k-th greatest cosine of the rows among it, less `margin` (one\n"
"float subtraction), or no bound when fewer than k rows are among it (`bounded` false). Writes, in order, at[i]\n"
"of every row i whose cosine is no less than the bound (and, with `only_among`, that is among) to `out_at` and,\n"
"unless `out_in` is None, among[i] to `out_in`; `count` is how many. k is at least 1; a NaN cosine is refused.");

static PyObject *reach(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (takes("reach", nargs, 8) < 0)
        return NULL;
    Views v = {.held = 0};
    double margin;
    Py_buffer *cosines, *at, *among = NULL, *out_at, *out_in = NULL;
    Py_ssize_t k = PyLong_AsSsize_t(args[2]);
    if (k == -1 && PyErr_Occurred())
        return NULL;
    int only = PyObject_IsTrue(args[5]);
    if (only < 0)
        return NULL;
    if ((cosines = view_of(&v, args[0], "cosines", FLOAT, 8, 0, 1, 0)) == NULL
            || (at = view_of(&v, args[1], "at", INTEGER, 8, 0, 1, 0)) == NULL
            || as_double(args[3], "margin", &margin) < 0
            || (args[4] != Py_None && (among = view_of(&v, args[4], "among", BOOL, 1, 0, 1, 0)) == NULL)
            || (out_at = view_of(&v, args[6], "out_at", INTEGER, 8, 1, 1, 0)) == NULL
            || (args[7] != Py_None && (out_in = view_of(&v, args[7], "out_in", BOOL, 1, 1, 1, 0)) == NULL)) {
        return dropped(&v);
    }
    Py_ssize_t n = length(cosines);
    const char *wrong = NULL;
    if (k < 1)
        wrong = "k: below 1";
    else if (length(at) != n || (among != NULL && length(among) != n))
        wrong = "at, among: not one a cosine";
    else if (length(out_at) < n || (out_in != NULL && length(out_in) < n))
        wrong = "out_at, out_in: fewer places than cosines";
    else if (among == NULL && (only || out_in != NULL))
        wrong = "only_among, out_in: need an among";
    if (wrong != NULL)
        return refused(&v, wrong);
    const double *c = cosines->buf;
    const uint8_t *in = among == NULL ? NULL : among->buf;
    int64_t *o = out_at->buf;
    /* One pass: the greatest cosines of the rows among so far, held in descending order (k at most), and the
       places of every row no less than the bound so far (the k-th held less the margin, or none before k are
       held). That bound only rises, so a row below it is below the final one; the places written are then
       narrowed to those no less than the final bound. */
    double stack[HELD_ON_STACK], *top = stack;
    Py_ssize_t room = k < n ? k : n, held = 0, count = 0;
    if (room > HELD_ON_STACK && (top = PyMem_Malloc((size_t)room * sizeof(double))) == NULL) {
        release(&v);
        return PyErr_NoMemory();
    }
    double floor = -HUGE_VAL;
    for (Py_ssize_t i = 0; i < n; i++) {
        double x = c[i];
        if (x < floor)
            continue;
        if (x != x) {
            wrong = "cosines: a NaN";
            break;
        }
        if (in != NULL && !in[i]) {
            if (!only)
                o[count++] = i;
            continue;
        }
        o[count++] = i;
        if (held == k) {
            if (!(x > top[k - 1]))
                continue;
            held--;
        }
        Py_ssize_t j = held++;
        for (; j > 0 && top[j - 1] < x; j--)
            top[j] = top[j - 1];
        top[j] = x;
        if (held == k)
            floor = top[k - 1] - margin;
    }
    if (top != stack)
        PyMem_Free(top);
    if (wrong != NULL)
        return refused(&v, wrong);
    const int64_t *p = at->buf;
    uint8_t *oi = out_in == NULL ? NULL : out_in->buf;
    Py_ssize_t kept = 0;
    for (Py_ssize_t j = 0; j < count; j++) {
        Py_ssize_t i = (Py_ssize_t)o[j];
        if (c[i] >= floor) {
            o[kept] = p[i];
            if (oi != NULL)
                oi[kept] = in[i];
            kept++;
        }
    }
    release(&v);
    return Py_BuildValue("(nO)", kept, held == k ? Py_True : Py_False);
}

/* Whether row i comes before row j: by effective distance (the distance, plus the margin where not ours), then
   distance, then rank; each as NumPy compares them in a lexsort. */
typedef struct {
    const double *distances;
    const uint8_t *ours;  /* NULL: every row ours, the effective distance the distance */
    double margin;
    const int64_t *ranks; /* the rows' own ranks, gathered */
} Keys;

static inline int before(const Keys *key, Py_ssize_t i, Py_ssize_t j)
{
    double di = key->distances[i], dj = key->distances[j];
    if (key->ours != NULL) {
        double ei = key->ours[i] ? di + 0.0 : di + key->margin, ej = key->ours[j] ? dj + 0.0 : dj + key->margin;
        if (ei != ej)
            return ei < ej;
    }
    if (di != dj)
        return di < dj;
    return key->ranks[i] < key->ranks[j];
}

PyDoc_STRVAR(first_k_doc,
"first_k(at, distances, id_rank, k, ours, margin, order, out_rows, out_distances) -> int\n\n"
"The first k of these rows (fewer when fewer rows), first first, and how many: the rows ordered by distance\n"
"(distances[i]), then id rank (id_rank[at[i]]); with `ours` (a bool a row, or None), by the effective distance\n"
"first (the distance, plus `margin` where not ours: one float sum), then as before. Stable, as `np.lexsort`.\n"
"Each one's at[i] (with `order`, order[at[i]]: a position of the grid's order turned into its row) goes to\n"
"`out_rows` and its distance to `out_distances`. k is at least 0, a NaN distance is refused.");

static PyObject *first_k(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (takes("first_k", nargs, 9) < 0)
        return NULL;
    Views v = {.held = 0};
    Keys key = {.ours = NULL, .margin = 0.0};
    Py_buffer *at, *distances, *id_rank, *ours = NULL, *order = NULL, *out_rows, *out_distances;
    Py_ssize_t k = PyLong_AsSsize_t(args[3]);
    if (k == -1 && PyErr_Occurred())
        return NULL;
    if ((at = view_of(&v, args[0], "at", INTEGER, 8, 0, 1, 0)) == NULL
            || (distances = view_of(&v, args[1], "distances", FLOAT, 8, 0, 1, 0)) == NULL
            || (id_rank = view_of(&v, args[2], "id_rank", INTEGER, 8, 0, 1, 0)) == NULL
            || (args[4] != Py_None && (ours = view_of(&v, args[4], "ours", BOOL, 1, 0, 1, 0)) == NULL)
            || as_double(args[5], "margin", &key.margin) < 0
            || (args[6] != Py_None && (order = view_of(&v, args[6], "order", INTEGER, 8, 0, 1, 0)) == NULL)
            || (out_rows = view_of(&v, args[7], "out_rows", INTEGER, 8, 1, 1, 0)) == NULL
            || (out_distances = view_of(&v, args[8], "out_distances", FLOAT, 8, 1, 1, 0)) == NULL) {
        return dropped(&v);
    }
    Py_ssize_t n = length(at), m = k < n ? k : n;
    const char *wrong = NULL;
    if (k < 0)
        wrong = "k: below 0";
    else if (length(distances) != n || (ours != NULL && length(ours) != n))
        wrong = "distances, ours: not one a row of at";
    else if (length(out_rows) < m || length(out_distances) < m)
        wrong = "out_rows, out_distances: fewer places than the rows to write";
    else if (order != NULL && length(order) != length(id_rank))
        wrong = "order: not one a row of id_rank";
    /* Per row its rank, gathered; then the places of the first m so far (at most m): one allocation. */
    int64_t *ranks = NULL;
    if (wrong == NULL && n > 0 && (ranks = PyMem_Malloc((size_t)(n + m) * sizeof(int64_t))) == NULL) {
        release(&v);
        return PyErr_NoMemory();
    }
    const int64_t *p = at->buf, *rank = id_rank->buf;
    const double *d = distances->buf;
    uint64_t rows = (uint64_t)length(id_rank);
    for (Py_ssize_t i = 0; wrong == NULL && i < n; i++) {
        if ((uint64_t)p[i] >= rows) /* a negative one wraps above the rows */
            wrong = "at: a row outside id_rank";
        else if (d[i] != d[i])
            wrong = "distances: a NaN";
        else
            ranks[i] = rank[p[i]];
    }
    if (wrong != NULL) {
        PyMem_Free(ranks);
        return refused(&v, wrong);
    }
    key.distances = d;
    key.ours = ours == NULL ? NULL : ours->buf;
    key.ranks = ranks;
    /* The first m rows so far, in order: a row goes after every one it does not come before (so equal rows keep
       their order), and past the m-th only when it comes before the last held. */
    int64_t *o = ranks + n;
    Py_ssize_t held = 0;
    for (Py_ssize_t i = 0; i < n && m > 0; i++) {
        if (held == m) {
            if (!before(&key, i, (Py_ssize_t)o[m - 1]))
                continue;
            held--;
        }
        Py_ssize_t j = held++;
        for (; j > 0 && before(&key, i, (Py_ssize_t)o[j - 1]); j--)
            o[j] = o[j - 1];
        o[j] = i;
    }
    /* `order` has a place for every row of id_rank, and each at[i] was checked within those. */
    const int64_t *to_row = order == NULL ? NULL : order->buf;
    int64_t *out_r = out_rows->buf;
    double *out_d = out_distances->buf;
    for (Py_ssize_t j = 0; j < held; j++) {
        out_r[j] = to_row == NULL ? p[o[j]] : to_row[p[o[j]]];
        out_d[j] = d[o[j]];
    }
    PyMem_Free(ranks);
    release(&v);
    return PyLong_FromSsize_t(held);
}

/* --- a grid's cells as runs -------------------------------------------------------------------------------- */

/* What `cell_runs` and `box_runs` read: a grid's starts (per type and cell, where its rows start in the grid's
   order, and one end after the last), its shape, the types, a box of cells, the cells, and the two outputs. */
typedef struct {
    const int64_t *s, *t, *c;
    Py_ssize_t cells_total, nx, m, n;  /* cells a type, cells a row, types, cells */
    Py_ssize_t y0, y1, x0, x1;         /* the box: first and last row, first and last column (empty: none) */
    int64_t *b, *e;
    Py_ssize_t room;                   /* places in begins and in ends (the fewer) */
} Grid;

/* The arguments both share, checked: start, cells_total, nx, cells (or None: no cells), types, box (or None),
   begins, ends. 0, or -1 with the error set and every view released. */
static int grid_of(Views *v, Grid *g, PyObject *const *args)
{
    g->cells_total = PyLong_AsSsize_t(args[1]);
    g->nx = PyLong_AsSsize_t(args[2]);
    if ((g->cells_total == -1 || g->nx == -1) && PyErr_Occurred())
        return -1;
    g->y0 = 0, g->y1 = -1, g->x0 = 0, g->x1 = -1; /* no cell lies in an empty box */
    PyObject *box = args[5];
    if (box != Py_None) {
        if (!PyTuple_Check(box) || PyTuple_GET_SIZE(box) != 4) {
            PyErr_SetString(PyExc_ValueError, "box: expected None or a tuple of 4 ints");
            return -1;
        }
        g->y0 = PyLong_AsSsize_t(PyTuple_GET_ITEM(box, 0));
        g->y1 = PyLong_AsSsize_t(PyTuple_GET_ITEM(box, 1));
        g->x0 = PyLong_AsSsize_t(PyTuple_GET_ITEM(box, 2));
        g->x1 = PyLong_AsSsize_t(PyTuple_GET_ITEM(box, 3));
        if (PyErr_Occurred())
            return -1;
    }
    Py_buffer *start, *cells = NULL, *types, *begins, *ends;
    if ((start = view_of(v, args[0], "start", INTEGER, 8, 0, 1, 0)) == NULL
            || (args[3] != Py_None && (cells = view_of(v, args[3], "cells", INTEGER, 8, 0, 1, 0)) == NULL)
            || (types = view_of(v, args[4], "types", INTEGER, 8, 0, 1, 0)) == NULL
            || (begins = view_of(v, args[6], "begins", INTEGER, 8, 1, 1, 0)) == NULL
            || (ends = view_of(v, args[7], "ends", INTEGER, 8, 1, 1, 0)) == NULL) {
        release(v);
        return -1;
    }
    g->s = start->buf;
    g->t = types->buf;
    g->c = cells == NULL ? NULL : cells->buf;
    g->m = length(types);
    g->n = cells == NULL ? 0 : length(cells);
    g->b = begins->buf;
    g->e = ends->buf;
    g->room = length(begins) < length(ends) ? length(begins) : length(ends);
    const char *wrong = NULL;
    if (g->nx < 1 || g->cells_total < 0 || g->cells_total % g->nx != 0)
        wrong = "nx, cells_total: not a grid of rows of nx cells";
    for (Py_ssize_t i = 0; wrong == NULL && i < g->n; i++)
        if (g->c[i] < 0 || g->c[i] >= g->cells_total)
            wrong = "cells: a cell outside the grid";
    /* A type's last cell's run ends at start[t * cells_total + cells_total]: within start for t below this. */
    Py_ssize_t starts = length(start);
    Py_ssize_t type_count = g->cells_total == 0 || starts == 0 ? 0 : (starts - 1) / g->cells_total;
    for (Py_ssize_t j = 0; wrong == NULL && j < g->m; j++)
        if (g->t[j] < 0 || g->t[j] >= type_count)
            wrong = "types: a type outside start";
    if (wrong != NULL) {
        refused(v, wrong);
        return -1;
    }
    return 0;
}

/* The runs of the cells outside the box, per type then cell, written from place `count` on (the room checked by
   the caller): the new count. */
static Py_ssize_t cells_outside(const Grid *g, Py_ssize_t count)
{
    for (Py_ssize_t j = 0; j < g->m; j++) {
        const int64_t *typed = g->s + g->t[j] * g->cells_total;
        for (Py_ssize_t i = 0; i < g->n; i++) {
            Py_ssize_t y = (Py_ssize_t)g->c[i] / g->nx, x = (Py_ssize_t)g->c[i] % g->nx;
            if (y >= g->y0 && y <= g->y1 && x >= g->x0 && x <= g->x1)
                continue;
            g->b[count] = typed[g->c[i]];
            g->e[count] = typed[g->c[i] + 1];
            count++;
        }
    }
    return count;
}

/* (count, the positions the count runs hold), or NULL with ValueError when a run ends before it begins (the
   starts not ascending); every view released. */
static PyObject *runs_and_total(Views *v, const Grid *g, Py_ssize_t count)
{
    Py_ssize_t total = 0;
    for (Py_ssize_t j = 0; j < count; j++) {
        if (g->e[j] < g->b[j])
            return refused(v, "start: a run ends before it begins");
        total += (Py_ssize_t)(g->e[j] - g->b[j]);
    }
    release(v);
    return Py_BuildValue("(nn)", count, total);
}

PyDoc_STRVAR(cell_runs_doc,
"cell_runs(start, cells_total, nx, cells, types, box, begins, ends) -> (count, total)\n\n"
"Where the rows of these cells (flat numbers: row * nx + column) lie in a grid's order, as runs: for each type\n"
"t of `types` in order, then each cell c of `cells` in order that lies outside `box` (first and last row, first\n"
"and last column of cells; None: every cell counts), begins gets start[t * cells_total + c] and ends the start\n"
"after it. Returns how many runs were written and how many positions they hold.");

static PyObject *cell_runs(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (takes("cell_runs", nargs, 8) < 0)
        return NULL;
    Views v = {.held = 0};
    Grid g;
    if (grid_of(&v, &g, args) < 0)
        return NULL;
    if (g.m > 0 && g.n > 0 && g.room / g.m < g.n)
        return refused(&v, "begins, ends: fewer places than types times cells");
    return runs_and_total(&v, &g, cells_outside(&g, 0));
}

PyDoc_STRVAR(box_runs_doc,
"box_runs(start, cells_total, nx, cells, types, box, begins, ends) -> (count, total)\n\n"
"Where the rows of a box of cells (first and last row, first and last column, within the grid) lie in a grid's\n"
"order, as runs: for each type t of `types` in order, then each row y of the box, begins gets\n"
"start[t * cells_total + y * nx + x0] and ends start[t * cells_total + y * nx + x1 + 1] (the row's cells are\n"
"one run of the order); then, unless `cells` is None, the runs of those cells outside the box, as `cell_runs`\n"
"gives them. Returns how many runs were written and how many positions they hold.");

static PyObject *box_runs(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (takes("box_runs", nargs, 8) < 0)
        return NULL;
    if (args[5] == Py_None) {
        PyErr_SetString(PyExc_ValueError, "box: expected a tuple of 4 ints");
        return NULL;
    }
    Views v = {.held = 0};
    Grid g;
    if (grid_of(&v, &g, args) < 0)
        return NULL;
    Py_ssize_t ny = g.cells_total / g.nx, rows = g.y1 - g.y0 + 1;
    if (g.y0 < 0 || g.y0 > g.y1 || g.y1 >= ny || g.x0 < 0 || g.x0 > g.x1 || g.x1 >= g.nx)
        return refused(&v, "box: not a box of cells within the grid");
    if (g.m > 0 && g.room / g.m < rows + g.n)
        return refused(&v, "begins, ends: fewer places than types times the box's rows and the cells");
    Py_ssize_t count = 0;
    for (Py_ssize_t j = 0; j < g.m; j++) {
        const int64_t *typed = g.s + g.t[j] * g.cells_total;
        for (Py_ssize_t y = g.y0; y <= g.y1; y++) {
            g.b[count] = typed[y * g.nx + g.x0];
            g.e[count] = typed[y * g.nx + g.x1 + 1]; /* at most cells_total: within start, as the type is */
            count++;
        }
    }
    return runs_and_total(&v, &g, cells_outside(&g, count));
}

/* --- a home's catchment table ------------------------------------------------------------------------------ */

PyDoc_STRVAR(union_doc,
"union(tables, places, offset, out) -> None\n\n"
"Writes to `out` (a bool a group) the union of `tables` (a list of one or more bool arrays, each as long as\n"
"`out`): out[g] is true where any table's [g] is; then sets out[offset + p] for each p of `places` (a list of\n"
"ints, each within out's length less offset). A home's catchment table (`search.columns._Catchments.covering`):\n"
"its areas' tables ORed, then the polygons holding it.");

static PyObject *union_(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (takes("union", nargs, 4) < 0)
        return NULL;
    PyObject *tables = args[0], *places = args[1];
    if (!PyList_Check(tables) || PyList_GET_SIZE(tables) < 1 || !PyList_Check(places)) {
        PyErr_SetString(PyExc_ValueError, "tables, places: expected a list of one or more tables, and a list");
        return NULL;
    }
    Py_ssize_t offset = PyLong_AsSsize_t(args[2]);
    if (offset == -1 && PyErr_Occurred())
        return NULL;
    Views v = {.held = 0};
    Py_buffer *out = view_of(&v, args[3], "out", BOOL, 1, 1, 1, 0);
    if (out == NULL) {
        return dropped(&v);
    }
    Py_ssize_t n = length(out);
    uint8_t *o = out->buf;
    if (offset < 0 || offset > n)
        return refused(&v, "offset: outside out");
    /* Each table viewed, read and released in turn: a home has any number of areas. */
    for (Py_ssize_t j = 0; j < PyList_GET_SIZE(tables); j++) {
        Py_buffer *table = view_of(&v, PyList_GET_ITEM(tables, j), "tables", BOOL, 1, 0, 1, 0);
        if (table == NULL) {
            return dropped(&v);
        }
        if (length(table) != n)
            return refused(&v, "tables: not one a group of out");
        const uint8_t *t = table->buf;
        if (j == 0) {
            memcpy(o, t, (size_t)n);
        } else { /* eight groups a step (a bool is a byte of 0 or 1, so is their OR), then the rest one by one */
            Py_ssize_t g = 0;
            for (; g + 8 <= n; g += 8) {
                uint64_t held, more;
                memcpy(&held, o + g, 8);
                memcpy(&more, t + g, 8);
                held |= more;
                memcpy(o + g, &held, 8);
            }
            for (; g < n; g++)
                o[g] |= t[g];
        }
        PyBuffer_Release(&v.views[--v.held]);
    }
    for (Py_ssize_t j = 0; j < PyList_GET_SIZE(places); j++) {
        Py_ssize_t p = PyLong_AsSsize_t(PyList_GET_ITEM(places, j));
        if (p == -1 && PyErr_Occurred()) {
            return dropped(&v);
        }
        if (p < 0 || p >= n - offset)
            return refused(&v, "places: a place outside out");
        o[offset + p] = 1;
    }
    release(&v);
    Py_RETURN_NONE;
}

/* --- the polygons' boxes about a point --------------------------------------------------------------------- */

/* A polygon's number as a bucket's candidates hold it (a float), or -1 when it is not one (negative, not whole,
   or past 2**53). */
static Py_ssize_t number_of(double x)
{
    return x >= 0.0 && x <= 9007199254740992.0 && x == floor(x) ? (Py_ssize_t)x : -1;
}

/* Appends `number` to `list`: -1 with the error set when it cannot. */
static int append_number(PyObject *list, Py_ssize_t number)
{
    PyObject *item = PyLong_FromSsize_t(number);
    int failed = item == NULL || PyList_Append(list, item) < 0;
    Py_XDECREF(item);
    return failed ? -1 : 0;
}

PyDoc_STRVAR(boxes_holding_doc,
"boxes_holding(candidates, lon, lat, held, unsure) -> None\n\n"
"For each row of `candidates` (9 floats a row: a polygon's number, its inner box ix0, iy0, ix1, iy1 and its\n"
"bounding box x0, y0, x1, y1), in order: when x0 <= lon <= x1 and y0 <= lat <= y1, its number is appended to\n"
"`held` (a list) if also ix0 <= lon <= ix1 and iy0 <= lat <= iy1, else to `unsure` (a list). The comparisons\n"
"of `search.polygons.PolygonLookup`, as Python makes them on floats.");

static PyObject *boxes_holding(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (takes("boxes_holding", nargs, 5) < 0)
        return NULL;
    PyObject *held = args[3], *unsure = args[4];
    if (!PyList_Check(held) || !PyList_Check(unsure)) {
        PyErr_SetString(PyExc_ValueError, "held, unsure: expected lists");
        return NULL;
    }
    Views v = {.held = 0};
    double lon, lat;
    Py_buffer *candidates;
    if ((candidates = view_of(&v, args[0], "candidates", FLOAT, 8, 0, 2, 9)) == NULL
            || as_double(args[1], "lon", &lon) < 0 || as_double(args[2], "lat", &lat) < 0) {
        return dropped(&v);
    }
    const double *c = candidates->buf;
    for (Py_ssize_t i = 0; i < candidates->shape[0]; i++, c += 9) {
        if (!(c[5] <= lon && lon <= c[7] && c[6] <= lat && lat <= c[8]))
            continue;
        Py_ssize_t number = number_of(c[0]);
        if (number < 0)
            return refused(&v, "candidates: a polygon's number that is not one");
        int inner = c[1] <= lon && lon <= c[3] && c[2] <= lat && lat <= c[4];
        if (append_number(inner ? held : unsure, number) < 0) {
            return dropped(&v);
        }
    }
    release(&v);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"kept_in_runs", (PyCFunction)(void (*)(void))kept_in_runs, METH_FASTCALL, kept_in_runs_doc},
    {"kept_of", (PyCFunction)(void (*)(void))kept_of, METH_FASTCALL, kept_of_doc},
    {"near", (PyCFunction)(void (*)(void))near, METH_FASTCALL, near_doc},
    {"reach", (PyCFunction)(void (*)(void))reach, METH_FASTCALL, reach_doc},
    {"first_k", (PyCFunction)(void (*)(void))first_k, METH_FASTCALL, first_k_doc},
    {"cell_runs", (PyCFunction)(void (*)(void))cell_runs, METH_FASTCALL, cell_runs_doc},
    {"box_runs", (PyCFunction)(void (*)(void))box_runs, METH_FASTCALL, box_runs_doc},
    {"union", (PyCFunction)(void (*)(void))union_, METH_FASTCALL, union_doc},
    {"boxes_holding", (PyCFunction)(void (*)(void))boxes_holding, METH_FASTCALL, boxes_holding_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "search._pass",
    "The row loops of a match's radius pass, in C: the filters' first stage and the radius test (see _pass.c).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__pass(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "CATCHMENT_SHIFT", CATCHMENT_SHIFT) < 0
            || PyModule_AddIntConstant(m, "MIN_AGE_SHIFT", MIN_AGE_SHIFT) < 0
            || PyModule_AddIntConstant(m, "MAX_AGE_SHIFT", MAX_AGE_SHIFT) < 0
            || PyModule_AddStringConstant(m, "SOURCE_SHA256", SOURCE_SHA256) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
