/*
 * test_graphdef.c - GraphDef export and import (io/src/graphdef.c).
 *
 * Sections: a graph using every feature export must carry (list inputs, ":N" and
 * "^control" inputs, devices, attrs of each kind Floe reads back, constant tensors of
 * several dtypes); the round trip (import of the export re-exports byte for byte, and
 * every node, input and attr matches); import of unsorted, hand-built GraphDefs through
 * protobuf-c; errors (unknown op, unknown attr, cycles, bad inputs, duplicate names,
 * limits, malformed bytes, truncation at every offset, every byte corrupted), each
 * leaving the target graph unchanged; load/save through the filesystem ABI;
 * tf.compat.v1.import_graph_def on the export, and proto/ against TensorFlow's
 * descriptors (both skipped without TensorFlow).
 */
#include "test_common.h"

#include <floe/fs.h>
#include <floe/graphdef.h>
#include <floe/tensor.h>

#include "graph.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- Building ------------------------------------------------------------------- */

static floe_node *build(floe_graph *g, const char *op, const char *name, const floe_output *in,
                        int nin, int list_at, int list_n, floe_attrs *attrs_src,
                        const char *device, floe_node *control) {
    floe_node_builder *b;
    assert_int_equal(floe_node_builder_new(g, op, name, &b), FLOE_OK);
    for (int i = 0; i < nin;) {
        if (i == list_at) {
            floe_node_builder_add_input_list(b, in + i, list_n);
            i += list_n;
        } else {
            floe_node_builder_add_input(b, in[i++]);
        }
    }
    if (device != NULL)
        floe_node_builder_set_device(b, device);
    if (control != NULL)
        floe_node_builder_add_control_input(b, control);
    floe_attrs *a = floe_node_builder_attrs(b);
    if (attrs_src != NULL) {
        for (int i = 0; i < floe_attrs_count(attrs_src); i++) {
            const char *nm = floe_attrs_name(attrs_src, i);
            switch (floe_attrs_type(attrs_src, nm)) {
            case FLOE_ATTR_INT: {
                int64_t v;
                floe_attrs_get_int(attrs_src, nm, &v);
                floe_attrs_set_int(a, nm, v);
                break;
            }
            case FLOE_ATTR_FLOAT: {
                float v;
                floe_attrs_get_float(attrs_src, nm, &v);
                floe_attrs_set_float(a, nm, v);
                break;
            }
            case FLOE_ATTR_BOOL: {
                int v;
                floe_attrs_get_bool(attrs_src, nm, &v);
                floe_attrs_set_bool(a, nm, v);
                break;
            }
            case FLOE_ATTR_STRING: {
                const char *s;
                size_t len;
                floe_attrs_get_string(attrs_src, nm, &s, &len);
                floe_attrs_set_string(a, nm, s, len);
                break;
            }
            case FLOE_ATTR_TYPE: {
                floe_dtype v;
                floe_attrs_get_type(attrs_src, nm, &v);
                floe_attrs_set_type(a, nm, v);
                break;
            }
            case FLOE_ATTR_SHAPE: {
                floe_shape v;
                floe_attrs_get_shape(attrs_src, nm, &v);
                floe_attrs_set_shape(a, nm, v.dims, v.ndim);
                break;
            }
            case FLOE_ATTR_TENSOR: {
                floe_tensor *v;
                floe_attrs_get_tensor(attrs_src, nm, &v);
                floe_attrs_set_tensor(a, nm, v);
                break;
            }
            case FLOE_ATTR_LIST_INT: {
                const int64_t *v;
                int n;
                floe_attrs_get_int_list(attrs_src, nm, &v, &n);
                floe_attrs_set_int_list(a, nm, v, n);
                break;
            }
            default:
                fail_msg("attr kind not copied by the test");
            }
        }
        floe_attrs_free(attrs_src);
    }
    return tc_finish(b);
}

static floe_node *konst(floe_graph *g, const char *name, floe_tensor *t) {
    floe_attrs *a = tc_attrs_new();
    floe_attrs_set_tensor(a, "value", t);
    floe_attrs_set_type(a, "dtype", floe_tensor_dtype(t));
    floe_tensor_unref(t);
    return build(g, "Const", name, NULL, 0, -1, 0, a, NULL, NULL);
}

/* Placeholder x [-1,3] -> MatMul(x, w^T) -> BiasAdd -> Relu6 on "/device:CPU:0";
 * ConcatV2 of two tensors (a list input); FusedBatchNormV3 (outputs used via ":1" and
 * ":2"); a string constant, an i64 and a bool constant; NoOp with control inputs. */
static floe_graph *sample_graph(floe_context *ctx) {
    floe_graph *g;
    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    floe_attrs *a = tc_attrs_new();
    int64_t xs[2] = {-1, 3};
    floe_attrs_set_type(a, "dtype", FLOE_DTYPE_F32);
    floe_attrs_set_shape(a, "shape", xs, 2);
    floe_node *x = build(g, "Placeholder", "input/x", NULL, 0, -1, 0, a, NULL, NULL);
    float wv[6] = {1.5f, -2, 0.25f, 3, 1e-7f, -0.0f};
    int64_t ws[2] = {2, 3};
    floe_node *w = konst(g, "w", tc_f32(ws, 2, wv));
    a = tc_attrs_new();
    floe_attrs_set_bool(a, "transpose_b", 1);
    floe_output mm_in[2] = {floe_out(x, 0), floe_out(w, 0)};
    floe_node *mm = build(g, "MatMul", "dense/MatMul", mm_in, 2, -1, 0, a, NULL, NULL);
    int64_t bs = 2;
    float bv[2] = {0.5f, -0.5f};
    floe_node *bias = konst(g, "b", tc_f32(&bs, 1, bv));
    floe_output ba_in[2] = {floe_out(mm, 0), floe_out(bias, 0)};
    floe_node *ba = build(g, "BiasAdd", "dense/BiasAdd", ba_in, 2, -1, 0, NULL, NULL, NULL);
    floe_output r_in[1] = {floe_out(ba, 0)};
    floe_node *r6 = build(g, "Relu6", "dense/Relu6", r_in, 1, -1, 0, NULL, "/device:CPU:0", NULL);
    floe_node *axis = konst(g, "axis", tc_scalar_i32(1));
    floe_output c_in[3] = {floe_out(r6, 0), floe_out(ba, 0), floe_out(axis, 0)};
    floe_node *cat = build(g, "ConcatV2", "concat", c_in, 3, 0, 2, NULL, NULL, NULL);

    /* FusedBatchNormV3 over a [1,1,2,2] constant. */
    int64_t s4[4] = {1, 1, 2, 2};
    float xv[4] = {1, 2, 3, 4};
    floe_node *x4 = konst(g, "bn/x", tc_f32(s4, 4, xv));
    int64_t c = 2;
    float ones[2] = {1, 1}, zeros[2] = {0, 0};
    floe_node *sc = konst(g, "bn/scale", tc_f32(&c, 1, ones));
    floe_node *of = konst(g, "bn/offset", tc_f32(&c, 1, zeros));
    floe_node *mn = konst(g, "bn/mean", tc_f32(&c, 1, zeros));
    floe_node *vr = konst(g, "bn/var", tc_f32(&c, 1, ones));
    a = tc_attrs_new();
    floe_attrs_set_float(a, "epsilon", 0.001f);
    floe_attrs_set_bool(a, "is_training", 0);
    floe_attrs_set_string(a, "data_format", "NHWC", 4);
    floe_output bn_in[5] = {floe_out(x4, 0), floe_out(sc, 0), floe_out(of, 0), floe_out(mn, 0),
                            floe_out(vr, 0)};
    floe_node *bn = build(g, "FusedBatchNormV3", "bn", bn_in, 5, -1, 0, a, NULL, NULL);
    floe_output id_in[1] = {floe_out(bn, 2)};
    build(g, "Identity", "bn_var_out", id_in, 1, -1, 0, NULL, "/job:localhost/replica:0/task:0/device:CPU:0",
          cat);

    floe_tensor *st;
    int64_t two = 2;
    assert_int_equal(floe_tensor_new(FLOE_DTYPE_STRING, &two, 1, &st), FLOE_OK);
    floe_tensor_set_string(st, 0, "hello", 5);
    floe_tensor_set_string(st, 1, "a\0b", 3);
    konst(g, "strings", st);
    int64_t iv[3] = {INT64_MIN, -1, INT64_MAX};
    int64_t three = 3;
    konst(g, "i64", tc_i64(&three, 1, iv));
    uint8_t bools[2] = {1, 0};
    konst(g, "bools", tc_tensor(FLOE_DTYPE_BOOL, &two, 1, bools));
    uint16_t halves[2] = {0x3c00, 0xc000};
    konst(g, "halves", tc_tensor(FLOE_DTYPE_F16, &two, 1, halves));
    build(g, "NoOp", "init", NULL, 0, -1, 0, NULL, NULL, bn);

    /* A list of strings (bytes, one with a NUL inside) and a shape attr. */
    floe_node_builder *b;
    assert_int_equal(floe_node_builder_new(g, "VarHandleOp", "var", &b), FLOE_OK);
    floe_attrs *va = floe_node_builder_attrs(b);
    const char *devs[2] = {"/device:CPU:0", "x\0y"};
    size_t lens[2] = {13, 3};
    int64_t vs[2] = {2, -1};
    floe_attrs_set_string_list(va, "allowed_devices", devs, lens, 2);
    floe_attrs_set_type(va, "dtype", FLOE_DTYPE_F32);
    floe_attrs_set_shape(va, "shape", vs, 2);
    floe_attrs_set_string(va, "shared_name", "v", 1);
    tc_finish(b);
    return g;
}

static void export_ok(const floe_graph *g, void **data, size_t *size) {
    floe_status st = floe_graphdef_export(g, data, size);
    if (st != FLOE_OK)
        fail_msg("export: %s", floe_last_error());
}

/* ---- Round trip ------------------------------------------------------------------- */

static void assert_attrs_equal(const floe_attrs *a, const floe_attrs *b, const char *node) {
    assert_int_equal(floe_attrs_count(a), floe_attrs_count(b));
    for (int i = 0; i < floe_attrs_count(a); i++) {
        const char *nm = floe_attrs_name(a, i);
        floe_attr_type k = floe_attrs_type(a, nm);
        if (k != floe_attrs_type(b, nm))
            fail_msg("node %s attr %s: kind %d vs %d", node, nm, k, floe_attrs_type(b, nm));
        if (k == FLOE_ATTR_TENSOR) {
            floe_tensor *ta, *tb;
            floe_attrs_get_tensor(a, nm, &ta);
            floe_attrs_get_tensor(b, nm, &tb);
            assert_int_equal(floe_tensor_dtype(ta), floe_tensor_dtype(tb));
            assert_int_equal(floe_tensor_ndim(ta), floe_tensor_ndim(tb));
            assert_int_equal(floe_tensor_num_elements(ta), floe_tensor_num_elements(tb));
            for (int64_t e = 0; e < floe_tensor_num_elements(ta); e++)
                tc_assert_elem_eq(ta, e, tb, e, false);
        } else if (k == FLOE_ATTR_FLOAT) {
            float fa, fb;
            floe_attrs_get_float(a, nm, &fa);
            floe_attrs_get_float(b, nm, &fb);
            assert_memory_equal(&fa, &fb, sizeof(fa));
        } else if (k == FLOE_ATTR_STRING) {
            const char *sa, *sb;
            size_t la, lb;
            floe_attrs_get_string(a, nm, &sa, &la);
            floe_attrs_get_string(b, nm, &sb, &lb);
            assert_int_equal(la, lb);
            assert_memory_equal(sa, sb, la);
        } else if (k == FLOE_ATTR_SHAPE) {
            floe_shape sa, sb;
            floe_attrs_get_shape(a, nm, &sa);
            floe_attrs_get_shape(b, nm, &sb);
            assert_int_equal(sa.ndim, sb.ndim);
            for (int d = 0; d < sa.ndim; d++)
                assert_int_equal(sa.dims[d], sb.dims[d]);
        } else if (k == FLOE_ATTR_INT || k == FLOE_ATTR_BOOL || k == FLOE_ATTR_TYPE) {
            int64_t va = 0, vb = 0;
            if (k == FLOE_ATTR_INT) {
                floe_attrs_get_int(a, nm, &va);
                floe_attrs_get_int(b, nm, &vb);
            } else if (k == FLOE_ATTR_BOOL) {
                int x, y;
                floe_attrs_get_bool(a, nm, &x);
                floe_attrs_get_bool(b, nm, &y);
                va = x;
                vb = y;
            } else {
                floe_dtype x, y;
                floe_attrs_get_type(a, nm, &x);
                floe_attrs_get_type(b, nm, &y);
                va = x;
                vb = y;
            }
            assert_int_equal(va, vb);
        } else if (k == FLOE_ATTR_LIST_STRING) {
            const floe_tstring *va, *vb;
            int na, nb;
            assert_int_equal(floe_attrs_get_string_list(a, nm, &va, &na), FLOE_OK);
            assert_int_equal(floe_attrs_get_string_list(b, nm, &vb, &nb), FLOE_OK);
            assert_int_equal(na, nb);
            for (int e = 0; e < na; e++) {
                assert_int_equal(va[e].size, vb[e].size);
                assert_memory_equal(va[e].data, vb[e].data, va[e].size);
            }
        } else if (k == FLOE_ATTR_LIST_INT) {
            const int64_t *va, *vb;
            int na, nb;
            floe_attrs_get_int_list(a, nm, &va, &na);
            floe_attrs_get_int_list(b, nm, &vb, &nb);
            assert_int_equal(na, nb);
            if (na > 0)
                assert_memory_equal(va, vb, (size_t)na * sizeof(int64_t));
        }
    }
}

static void assert_graphs_equal(const floe_graph *a, const floe_graph *b) {
    assert_int_equal(floe_graph_num_nodes(a), floe_graph_num_nodes(b));
    for (int i = 0; i < floe_graph_num_nodes(a); i++) {
        const floe_node *na = floe_graph_node(a, i);
        const floe_node *nb = floe_graph_find(b, floe_node_name(na));
        assert_non_null(nb);
        assert_string_equal(floe_node_op(na), floe_node_op(nb));
        assert_string_equal(floe_node_device(na), floe_node_device(nb));
        assert_int_equal(floe_node_num_inputs(na), floe_node_num_inputs(nb));
        for (int k = 0; k < floe_node_num_inputs(na); k++) {
            floe_output ia = floe_node_input(na, k), ib = floe_node_input(nb, k);
            assert_string_equal(floe_node_name(ia.node), floe_node_name(ib.node));
            assert_int_equal(ia.index, ib.index);
        }
        assert_int_equal(floe_node_num_control_inputs(na), floe_node_num_control_inputs(nb));
        for (int k = 0; k < floe_node_num_control_inputs(na); k++)
            assert_string_equal(floe_node_name(floe_node_control_input(na, k)),
                                floe_node_name(floe_node_control_input(nb, k)));
        assert_attrs_equal(floe_node_attrs(na), floe_node_attrs(nb), floe_node_name(na));
    }
}

static void graphdef_roundtrip_is_lossless(void **state) {
    floe_context *ctx = *state;
    floe_graph *g = sample_graph(ctx), *h;
    void *d1, *d2;
    size_t n1, n2;

    export_ok(g, &d1, &n1);
    assert_int_equal(floe_graph_new(ctx, &h), FLOE_OK);
    if (floe_graphdef_import(h, d1, n1) != FLOE_OK)
        fail_msg("import: %s", floe_last_error());
    assert_graphs_equal(g, h);
    export_ok(h, &d2, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(d1, d2, n1);

    /* The wire form: inputs written as TensorFlow writes them. */
    Floe__Tf__GraphDef *gd = floe__tf__graph_def__unpack(NULL, n1, d1);
    assert_non_null(gd);
    assert_int_equal(gd->versions->producer, 2474);
    bool saw_index = false, saw_control = false;
    for (size_t i = 0; i < gd->n_node; i++)
        for (size_t k = 0; k < gd->node[i]->n_input; k++) {
            saw_index |= strcmp(gd->node[i]->input[k], "bn:2") == 0;
            saw_control |= strcmp(gd->node[i]->input[k], "^concat") == 0;
        }
    assert_true(saw_index);
    assert_true(saw_control);
    floe__tf__graph_def__free_unpacked(gd, NULL);
    free(d1);
    free(d2);
    floe_graph_free(h);
    floe_graph_free(g);
}

static void graphdef_export_empty_graph(void **state) {
    floe_graph *g;
    void *d;
    size_t n;
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    export_ok(g, &d, &n);
    assert_true(n > 0);  /* the versions */
    assert_int_equal(floe_graphdef_import(g, d, n), FLOE_OK);
    assert_int_equal(floe_graph_num_nodes(g), 0);
    assert_int_equal(floe_graphdef_import(g, NULL, 0), FLOE_OK);
    free(d);
    floe_graph_free(g);
}

static void graphdef_bad_arguments(void **state) {
    floe_graph *g;
    void *d = (void *)1;
    size_t n = 7;
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    assert_int_equal(floe_graphdef_export(NULL, &d, &n), FLOE_INVALID_ARGUMENT);
    assert_null(d);
    assert_int_equal(n, 0);
    assert_int_equal(floe_graphdef_import(NULL, "", 0), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_graphdef_import(g, NULL, 4), FLOE_INVALID_ARGUMENT);
    floe_graphdef_options o;
    floe_graphdef_options_init(&o);
    o.max_attr_depth = 0;
    assert_int_equal(floe_graphdef_import_v2(g, "", 0, &o), FLOE_INVALID_ARGUMENT);
    floe_graphdef_options_init(&o);
    o.struct_size = 8;
    assert_int_equal(floe_graphdef_import_v2(g, "", 0, &o), FLOE_INVALID_ARGUMENT);
    floe_graph_free(g);
}

/* ---- Hand-built GraphDefs ------------------------------------------------------------- */

typedef struct gd_builder {
    Floe__Tf__GraphDef gd;
    Floe__Tf__NodeDef nodes[16];
    Floe__Tf__NodeDef *ptrs[16];
    Floe__Tf__NodeDef__AttrEntry entries[16][4];
    Floe__Tf__NodeDef__AttrEntry *eptrs[16][4];
    Floe__Tf__AttrValue values[16][4];
    char *inputs[16][4];
} gd_builder;

static void gdb_init(gd_builder *b) {
    memset(b, 0, sizeof(*b));
    floe__tf__graph_def__init(&b->gd);
    b->gd.node = b->ptrs;
}

static Floe__Tf__NodeDef *gdb_node(gd_builder *b, const char *name, const char *op,
                                   const char *in0, const char *in1) {
    size_t i = b->gd.n_node++;
    Floe__Tf__NodeDef *nd = &b->nodes[i];
    floe__tf__node_def__init(nd);
    nd->name = (char *)name;
    nd->op = (char *)op;
    nd->input = b->inputs[i];
    if (in0 != NULL)
        nd->input[nd->n_input++] = (char *)in0;
    if (in1 != NULL)
        nd->input[nd->n_input++] = (char *)in1;
    nd->attr = b->eptrs[i];
    b->ptrs[i] = nd;
    return nd;
}

static Floe__Tf__AttrValue *gdb_attr(gd_builder *b, Floe__Tf__NodeDef *nd, const char *key) {
    size_t i = (size_t)(nd - b->nodes), k = nd->n_attr++;
    Floe__Tf__NodeDef__AttrEntry *e = &b->entries[i][k];
    floe__tf__node_def__attr_entry__init(e);
    e->key = (char *)key;
    e->value = &b->values[i][k];
    floe__tf__attr_value__init(e->value);
    b->eptrs[i][k] = e;
    return e->value;
}

static void gdb_type(gd_builder *b, Floe__Tf__NodeDef *nd, const char *key, int dt) {
    Floe__Tf__AttrValue *v = gdb_attr(b, nd, key);
    v->value_case = FLOE__TF__ATTR_VALUE__VALUE_TYPE;
    v->type = (Floe__Tf__DataType)dt;
}

static uint8_t *gdb_pack(gd_builder *b, size_t *n) {
    *n = floe__tf__graph_def__get_packed_size(&b->gd);
    uint8_t *buf = malloc(*n ? *n : 1);
    floe__tf__graph_def__pack(&b->gd, buf);
    return buf;
}

/* Imports @b expecting @want and a message containing @needle (when @want is not OK),
 * and checks that a failed import added nothing. */
static void gdb_expect(floe_context *ctx, gd_builder *b, floe_status want, const char *needle) {
    size_t n;
    uint8_t *buf = gdb_pack(b, &n);
    floe_graph *g;
    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    floe_status st = floe_graphdef_import(g, buf, n);
    if (st != want)
        fail_msg("import gave %d, wanted %d: %s", st, want, floe_last_error());
    if (want != FLOE_OK) {
        tc_assert_error_contains(needle);
        assert_int_equal(floe_graph_num_nodes(g), 0);
    }
    floe_graph_free(g);
    free(buf);
}

static Floe__Tf__NodeDef *gdb_ph(gd_builder *b, const char *name) {
    Floe__Tf__NodeDef *nd = gdb_node(b, name, "Placeholder", NULL, NULL);
    gdb_type(b, nd, "dtype", 1);
    return nd;
}

static void graphdef_import_unsorted_and_internal_attrs(void **state) {
    gd_builder b;
    gdb_init(&b);
    Floe__Tf__NodeDef *r = gdb_node(&b, "relu", "Relu", "id", NULL);
    gdb_type(&b, r, "T", 1);
    Floe__Tf__AttrValue *os = gdb_attr(&b, r, "_output_shapes");
    Floe__Tf__AttrValue__ListValue lv = FLOE__TF__ATTR_VALUE__LIST_VALUE__INIT;
    os->value_case = FLOE__TF__ATTR_VALUE__VALUE_LIST;
    os->list = &lv;
    Floe__Tf__NodeDef *id = gdb_node(&b, "id", "Identity", "x:0", NULL);
    gdb_type(&b, id, "T", 1);
    gdb_ph(&b, "x");
    size_t n;
    uint8_t *buf = gdb_pack(&b, &n);
    floe_graph *g;
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    if (floe_graphdef_import(g, buf, n) != FLOE_OK)
        fail_msg("%s", floe_last_error());
    assert_int_equal(floe_graph_num_nodes(g), 3);
    assert_string_equal(floe_node_name(floe_graph_node(g, 0)), "x");
    assert_int_equal(floe_attrs_type(floe_node_attrs(floe_graph_find(g, "relu")),
                                     "_output_shapes"), FLOE_ATTR_NONE);
    /* A second import of the same names clashes with the nodes now there. */
    assert_int_equal(floe_graphdef_import(g, buf, n), FLOE_ALREADY_EXISTS);
    tc_assert_error_contains("already has a node");
    assert_int_equal(floe_graph_num_nodes(g), 3);
    floe_graph_free(g);
    free(buf);
}

static void graphdef_import_errors_name_the_node(void **state) {
    floe_context *ctx = *state;
    gd_builder b;

    gdb_init(&b);
    gdb_ph(&b, "x");
    gdb_node(&b, "mystery", "NoSuchOpAnywhere", "x", NULL);
    gdb_expect(ctx, &b, FLOE_NOT_FOUND, "node 'mystery': op 'NoSuchOpAnywhere'");

    gdb_init(&b);
    Floe__Tf__NodeDef *x = gdb_ph(&b, "x");
    Floe__Tf__AttrValue *v = gdb_attr(&b, x, "colour");
    v->value_case = FLOE__TF__ATTR_VALUE__VALUE_I;
    gdb_expect(ctx, &b, FLOE_INVALID_ARGUMENT, "'colour'");

    gdb_init(&b);
    gdb_type(&b, gdb_node(&b, "a", "Identity", "b", NULL), "T", 1);
    gdb_type(&b, gdb_node(&b, "b", "Identity", "a", NULL), "T", 1);
    gdb_expect(ctx, &b, FLOE_INVALID_ARGUMENT, "cycle");

    gdb_init(&b);
    gdb_ph(&b, "x");
    gdb_type(&b, gdb_node(&b, "self", "Identity", "x", "^self"), "T", 1);
    gdb_expect(ctx, &b, FLOE_INVALID_ARGUMENT, "cycle");

    gdb_init(&b);
    gdb_ph(&b, "x");
    gdb_type(&b, gdb_node(&b, "i", "Identity", "nowhere:0", NULL), "T", 1);
    gdb_expect(ctx, &b, FLOE_INVALID_ARGUMENT, "input 'nowhere:0' names no node");

    gdb_init(&b);
    gdb_ph(&b, "x");
    gdb_type(&b, gdb_node(&b, "i", "Identity", "x:3", NULL), "T", 1);
    gdb_expect(ctx, &b, FLOE_INVALID_ARGUMENT, "has 1 outputs");

    gdb_init(&b);
    gdb_ph(&b, "x");
    gdb_ph(&b, "x");
    gdb_expect(ctx, &b, FLOE_INVALID_ARGUMENT, "defined twice");

    gdb_init(&b);
    gdb_ph(&b, "x");
    gdb_type(&b, gdb_node(&b, "i", "Identity", "^x", "x"), "T", 1);
    gdb_expect(ctx, &b, FLOE_INVALID_ARGUMENT, "follows a control input");

    gdb_init(&b);
    x = gdb_ph(&b, "x");
    gdb_type(&b, x, "dtype", 77);
    gdb_expect(ctx, &b, FLOE_INVALID_ARGUMENT, "unknown dtype 77");

    gdb_init(&b);
    x = gdb_ph(&b, "x");
    v = gdb_attr(&b, x, "shape");
    v->value_case = FLOE__TF__ATTR_VALUE__VALUE_FUNC;
    Floe__Tf__NameAttrList fn = FLOE__TF__NAME_ATTR_LIST__INIT;
    fn.name = (char *)"f";
    v->func = &fn;
    gdb_expect(ctx, &b, FLOE_INVALID_ARGUMENT, "function attributes");

    /* Too many inputs for the op. */
    gdb_init(&b);
    gdb_ph(&b, "x");
    gdb_type(&b, gdb_node(&b, "i", "Identity", "x", "x"), "T", 1);
    gdb_expect(ctx, &b, FLOE_INVALID_ARGUMENT, "2 data inputs");
}

static void const_node(gd_builder *b, const char *name, Floe__Tf__TensorProto *tp) {
    Floe__Tf__NodeDef *c = gdb_node(b, name, "Const", NULL, NULL);
    gdb_type(b, c, "dtype", (int)tp->dtype);
    Floe__Tf__AttrValue *v = gdb_attr(b, c, "value");
    v->value_case = FLOE__TF__ATTR_VALUE__VALUE_TENSOR;
    v->tensor = tp;
}

static void graphdef_tensor_forms(void **state) {
    floe_context *ctx = *state;
    gd_builder b;
    Floe__Tf__TensorProto tp = FLOE__TF__TENSOR_PROTO__INIT;
    Floe__Tf__TensorShapeProto sp = FLOE__TF__TENSOR_SHAPE_PROTO__INIT;
    Floe__Tf__TensorShapeProto__Dim d0 = FLOE__TF__TENSOR_SHAPE_PROTO__DIM__INIT;
    Floe__Tf__TensorShapeProto__Dim *dims[1] = {&d0};
    float fv[2] = {7, 9};

    /* Fewer values than elements: the last repeats (TensorFlow's rule). */
    gdb_init(&b);
    tp.dtype = FLOE__TF__DATA_TYPE__DT_FLOAT;
    tp.tensor_shape = &sp;
    sp.dim = dims;
    sp.n_dim = 1;
    d0.size = 4;
    tp.float_val = fv;
    tp.n_float_val = 2;
    const_node(&b, "c", &tp);
    size_t n;
    uint8_t *buf = gdb_pack(&b, &n);
    floe_graph *g;
    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    assert_int_equal(floe_graphdef_import(g, buf, n), FLOE_OK);
    floe_tensor *t;
    assert_int_equal(floe_attrs_get_tensor(floe_node_attrs(floe_graph_find(g, "c")), "value", &t),
                     FLOE_OK);
    double want[4] = {7, 9, 9, 9};
    tc_assert_near(t, want, 4, 0, 0, false, "repeated last value");
    floe_graph_free(g);
    free(buf);

    /* More values than elements. */
    d0.size = 1;
    gdb_expect(ctx, &b, FLOE_INVALID_ARGUMENT, "2 values for a tensor of 1 elements");
    /* tensor_content of the wrong size. */
    d0.size = 3;
    tp.n_float_val = 0;
    tp.tensor_content.data = (uint8_t *)fv;
    tp.tensor_content.len = 8;
    gdb_expect(ctx, &b, FLOE_INVALID_ARGUMENT, "tensor_content holds 8 bytes");
    /* Unknown extent in a constant. */
    d0.size = -1;
    gdb_expect(ctx, &b, FLOE_INVALID_ARGUMENT, "bad extent");
    /* A huge tensor from one value: the byte limit, not memory, stops it. */
    tp.tensor_content.len = 0;
    tp.n_float_val = 1;
    d0.size = (int64_t)1 << 40;
    gdb_expect(ctx, &b, FLOE_INVALID_ARGUMENT, "(the limit)");
    /* A dtype Floe lacks. */
    d0.size = 1;
    tp.dtype = FLOE__TF__DATA_TYPE__DT_QINT8;
    b.values[0][0].type = FLOE__TF__DATA_TYPE__DT_QINT8;
    gdb_expect(ctx, &b, FLOE_INVALID_ARGUMENT, "dtype 11");
}

static void graphdef_limits(void **state) {
    floe_context *ctx = *state;
    gd_builder b;
    gdb_init(&b);
    gdb_ph(&b, "a");
    gdb_ph(&b, "b");
    gdb_ph(&b, "c");
    size_t n;
    uint8_t *buf = gdb_pack(&b, &n);
    floe_graph *g;
    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    floe_graphdef_options o;
    floe_graphdef_options_init(&o);
    o.max_nodes = 2;
    assert_int_equal(floe_graphdef_import_v2(g, buf, n, &o), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("more than 2 nodes");
    floe_graphdef_options_init(&o);
    o.max_total_bytes = n - 1;
    assert_int_equal(floe_graphdef_import_v2(g, buf, n, &o), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("exceeds the limit");
    assert_int_equal(floe_graph_num_nodes(g), 0);
    o.max_total_bytes = n;
    assert_int_equal(floe_graphdef_import_v2(g, buf, n, &o), FLOE_OK);
    free(buf);

    /* Attr nesting: func -> attr -> func -> ... 20 levels (40 messages) deep, checked before decoding. */
    Floe__Tf__AttrValue vals[20];
    Floe__Tf__NameAttrList fns[20];
    Floe__Tf__NameAttrList__AttrEntry ents[20], *eptr[20];
    for (int i = 0; i < 20; i++) {
        floe__tf__attr_value__init(&vals[i]);
        floe__tf__name_attr_list__init(&fns[i]);
        floe__tf__name_attr_list__attr_entry__init(&ents[i]);
        vals[i].value_case = FLOE__TF__ATTR_VALUE__VALUE_FUNC;
        vals[i].func = &fns[i];
        fns[i].name = (char *)"f";
        if (i + 1 < 20) {
            ents[i].key = (char *)"k";
            ents[i].value = &vals[i + 1];
            eptr[i] = &ents[i];
            fns[i].attr = &eptr[i];
            fns[i].n_attr = 1;
        }
    }
    gdb_init(&b);
    Floe__Tf__NodeDef *x = gdb_ph(&b, "deep");
    Floe__Tf__AttrValue *v = gdb_attr(&b, x, "nest");
    *v = vals[0];
    buf = gdb_pack(&b, &n);
    floe_graph_free(g);
    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    assert_int_equal(floe_graphdef_import(g, buf, n), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("nesting deeper than 16");
    floe_graphdef_options_init(&o);
    o.max_attr_depth = 64;
    assert_int_equal(floe_graphdef_import_v2(g, buf, n, &o), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("function attributes");
    assert_int_equal(floe_graph_num_nodes(g), 0);
    free(buf);
    floe_graph_free(g);
}

/* ---- Malformed bytes ----------------------------------------------------------------- */

static void graphdef_truncated_at_every_offset(void **state) {
    floe_context *ctx = *state;
    floe_graph *g = sample_graph(ctx);
    void *d;
    size_t n;
    export_ok(g, &d, &n);
    floe_graph_free(g);
    int ok = 0, bad = 0;
    for (size_t k = 0; k < n; k++) {
        uint8_t *cut = malloc(k ? k : 1);  /* exactly k bytes: ASan sees any overread */
        memcpy(cut, d, k);
        floe_graph *h;
        assert_int_equal(floe_graph_new(ctx, &h), FLOE_OK);
        floe_status st = floe_graphdef_import(h, cut, k);
        if (st == FLOE_OK) {
            ok++;
        } else {
            bad++;
            if (st != FLOE_INVALID_ARGUMENT)
                fail_msg("cut at %zu: status %d: %s", k, st, floe_last_error());
            assert_int_equal(floe_graph_num_nodes(h), 0);
        }
        floe_graph_free(h);
        free(cut);
    }
    /* Cuts at node boundaries are valid, shorter GraphDefs; most cuts are not. */
    assert_true(bad > ok);
    assert_true(ok > 0);
    free(d);
}

static void graphdef_every_byte_corrupted(void **state) {
    floe_context *ctx = *state;
    floe_graph *g = sample_graph(ctx);
    void *d;
    size_t n;
    export_ok(g, &d, &n);
    floe_graph_free(g);
    static const uint8_t flips[] = {0xff, 0x80, 0x01};
    for (size_t k = 0; k < n; k++)
        for (size_t f = 0; f < sizeof(flips); f++) {
            uint8_t *c = malloc(n);
            memcpy(c, d, n);
            c[k] ^= flips[f];
            floe_graph *h;
            assert_int_equal(floe_graph_new(ctx, &h), FLOE_OK);
            floe_status st = floe_graphdef_import(h, c, n);
            if (st != FLOE_OK) {
                assert_true(strlen(floe_last_error()) > 0);
                assert_int_equal(floe_graph_num_nodes(h), 0);
            }
            floe_graph_free(h);
            free(c);
        }
    free(d);
}

/* ---- Files and TensorFlow ------------------------------------------------------------ */

static void graphdef_save_and_load(void **state) {
    floe_context *ctx = *state;
    floe_graph *g = sample_graph(ctx), *h;
    char path[] = "/tmp/floe_graphdef_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(floe_graphdef_save(g, path), FLOE_OK);
    assert_int_equal(floe_graph_new(ctx, &h), FLOE_OK);
    assert_int_equal(floe_graphdef_load(h, path, NULL), FLOE_OK);
    assert_graphs_equal(g, h);
    floe_graph_free(h);
    assert_int_equal(floe_graph_new(ctx, &h), FLOE_OK);
    floe_graphdef_options o;
    floe_graphdef_options_init(&o);
    o.max_total_bytes = 10;
    assert_int_not_equal(floe_graphdef_load(h, path, &o), FLOE_OK);
    assert_int_not_equal(floe_graphdef_load(h, "/nonexistent/dir/x.pb", NULL), FLOE_OK);
    assert_int_equal(floe_graph_num_nodes(h), 0);
    floe_graph_free(h);
    floe_graph_free(g);
    unlink(path);
}

static void graphdef_tensorflow_accepts_export(void **state) {
    floe_context *ctx = *state;
    const char *root = getenv("FLOE_SOURCE_ROOT");
    if (root == NULL)
        skip();
    floe_graph *g = sample_graph(ctx);
    char path[] = "/tmp/floe_graphdef_tf_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(floe_graphdef_save(g, path), FLOE_OK);
    floe_graph_free(g);
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "python3 %s/tests/io/check_graphdef_tf.py %s", root, path);
    int rc = system(cmd);
    unlink(path);
    if (WIFEXITED(rc) && WEXITSTATUS(rc) == 77) {
        printf("SKIP: TensorFlow is not installed (tf.compat.v1.import_graph_def check)\n");
        skip();
    }
    assert_true(WIFEXITED(rc));
    assert_int_equal(WEXITSTATUS(rc), 0);
}

/* The files of proto/ against TensorFlow's own descriptors (tests/fixtures/tf/check_protos.py):
 * every field number, type and label, every DataType value. */
static void graphdef_protos_match_tensorflow(void **state) {
    (void)state;
    const char *root = getenv("FLOE_SOURCE_ROOT");
    if (root == NULL)
        skip();
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "python3 %s/tests/fixtures/tf/check_protos.py %s/proto", root,
             root);
    int rc = system(cmd);
    if (WIFEXITED(rc) && WEXITSTATUS(rc) == 77) {
        printf("SKIP: TensorFlow or protoc is not installed (proto field check)\n");
        skip();
    }
    assert_true(WIFEXITED(rc));
    assert_int_equal(WEXITSTATUS(rc), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(graphdef_roundtrip_is_lossless),
        cmocka_unit_test(graphdef_export_empty_graph),
        cmocka_unit_test(graphdef_bad_arguments),
        cmocka_unit_test(graphdef_import_unsorted_and_internal_attrs),
        cmocka_unit_test(graphdef_import_errors_name_the_node),
        cmocka_unit_test(graphdef_tensor_forms),
        cmocka_unit_test(graphdef_limits),
        cmocka_unit_test(graphdef_truncated_at_every_offset),
        cmocka_unit_test(graphdef_every_byte_corrupted),
        cmocka_unit_test(graphdef_save_and_load),
        cmocka_unit_test(graphdef_tensorflow_accepts_export),
        cmocka_unit_test(graphdef_protos_match_tensorflow),
    };
    return cmocka_run_group_tests(tests, tc_setup_context, tc_teardown_context);
}
