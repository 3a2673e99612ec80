/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * ONNX protobuf reader. Field numbers follow onnx/onnx.proto (ir_version 3
 * onwards); unknown fields are skipped, as protobuf requires, so newer files
 * still read. Fuzzed by tests/fuzz/fuzz-onnx.c.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "onnx.h"

#include <string.h>

G_DEFINE_QUARK (onnx - error - quark, onnx_error)

/* Protobuf wire types. Groups (3, 4) are long deprecated; ONNX never
 * writes them, so we reject them rather than skip them. */
enum {
  WIRE_VARINT = 0,
  WIRE_I64 = 1,
  WIRE_LEN = 2,
  WIRE_I32 = 5,
};

/* One tensor may hold at most this many elements: 2^28 floats is 1 GiB,
 * far beyond any model we load, and keeps size arithmetic in range. */
#define MAX_ELEMENTS (G_GUINT64_CONSTANT (1) << 28)

/* A view of the bytes of one message; the reader never owns memory. */
typedef struct
{
  const guint8 *p;
  const guint8 *end;
} Pb;

/* One decoded field: a varint / fixed value, or a sub-slice for LEN. */
typedef struct
{
  guint32 number;
  guint wire;
  guint64 v;
  Pb sub;
} PbField;

static gboolean
fail (GError **error, OnnxError code, const gchar *what)
{
  g_set_error (error, ONNX_ERROR, code, "ONNX: %s", what);
  return FALSE;
}

static gboolean
pb_varint (Pb *pb, guint64 *out)
{
  guint64 v = 0;

  /* A varint is at most 10 bytes; the 10th may only carry bit 63. */
  for (guint shift = 0; shift < 70; shift += 7) {
    guint8 b;

    if (pb->p >= pb->end)
      return FALSE;
    b = *pb->p++;
    if (shift == 63 && (b & 0x7e))
      return FALSE;
    v |= (guint64)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return TRUE;
    }
  }
  return FALSE;
}

/* Reads the next field of @pb into @f. Returns FALSE at the end of the
 * message (with no error set) or on malformed input (error set). */
static gboolean
pb_next (Pb *pb, PbField *f, GError **error)
{
  guint64 key, len;

  if (pb->p >= pb->end)
    return FALSE;
  if (!pb_varint (pb, &key))
    return fail (error, ONNX_ERROR_TRUNCATED, "bad field key");
  f->number = (guint32)(key >> 3);
  f->wire = key & 7;
  if (f->number == 0 || (key >> 3) > G_MAXUINT32)
    return fail (error, ONNX_ERROR_MALFORMED, "bad field number");

  switch (f->wire) {
    case WIRE_VARINT:
      if (!pb_varint (pb, &f->v))
        return fail (error, ONNX_ERROR_TRUNCATED, "bad varint");
      return TRUE;
    case WIRE_I64:
    case WIRE_I32: {
      gsize n = f->wire == WIRE_I64 ? 8 : 4;

      if ((gsize)(pb->end - pb->p) < n)
        return fail (error, ONNX_ERROR_TRUNCATED, "fixed field past end");
      f->v = 0;
      for (gsize i = 0; i < n; i++)
        f->v |= (guint64)pb->p[i] << (8 * i);
      pb->p += n;
      return TRUE;
    }
    case WIRE_LEN:
      if (!pb_varint (pb, &len))
        return fail (error, ONNX_ERROR_TRUNCATED, "bad length");
      if (len > (guint64)(pb->end - pb->p))
        return fail (error, ONNX_ERROR_TRUNCATED, "field runs past end");
      f->sub.p = pb->p;
      f->sub.end = pb->p + len;
      pb->p += len;
      return TRUE;
    default:
      return fail (error, ONNX_ERROR_MALFORMED, "unsupported wire type");
  }
}

static gboolean
expect_wire (const PbField *f, guint wire, GError **error)
{
  if (f->wire == wire)
    return TRUE;
  return fail (error, ONNX_ERROR_MALFORMED, "unexpected wire type");
}

/* Returns a newly allocated NUL-terminated copy of a LEN field. */
static gchar *
field_string (const PbField *f)
{
  return g_strndup ((const gchar *)f->sub.p, f->sub.end - f->sub.p);
}

static gfloat
bits_to_float (guint32 bits)
{
  gfloat x;

  memcpy (&x, &bits, sizeof x);
  return x;
}

static gdouble
bits_to_double (guint64 bits)
{
  gdouble x;

  memcpy (&x, &bits, sizeof x);
  return x;
}

/* Appends a repeated int64 field, packed (LEN) or not (VARINT). */
static gboolean
append_ints (GArray *arr, const PbField *f, GError **error)
{
  if (f->wire == WIRE_VARINT) {
    gint64 v = (gint64)f->v;

    g_array_append_val (arr, v);
    return TRUE;
  }
  if (!expect_wire (f, WIRE_LEN, error))
    return FALSE;

  Pb sub = f->sub;
  while (sub.p < sub.end) {
    guint64 u;
    gint64 v;

    if (!pb_varint (&sub, &u))
      return fail (error, ONNX_ERROR_TRUNCATED, "bad packed varint");
    v = (gint64)u;
    g_array_append_val (arr, v);
  }
  return TRUE;
}

/* Appends a repeated float field, packed (LEN) or not (I32). */
static gboolean
append_floats (GArray *arr, const PbField *f, GError **error)
{
  if (f->wire == WIRE_I32) {
    gfloat v = bits_to_float ((guint32)f->v);

    g_array_append_val (arr, v);
    return TRUE;
  }
  if (!expect_wire (f, WIRE_LEN, error))
    return FALSE;
  if ((f->sub.end - f->sub.p) % 4 != 0)
    return fail (error, ONNX_ERROR_MALFORMED, "packed floats not 4-aligned");

  for (const guint8 *q = f->sub.p; q < f->sub.end; q += 4) {
    guint32 bits = q[0] | (q[1] << 8) | (q[2] << 16) | ((guint32)q[3] << 24);
    gfloat v = bits_to_float (bits);

    g_array_append_val (arr, v);
  }
  return TRUE;
}

/* Appends a repeated double field, packed or not, narrowed to float. */
static gboolean
append_doubles (GArray *arr, const PbField *f, GError **error)
{
  if (f->wire == WIRE_I64) {
    gfloat v = (gfloat)bits_to_double (f->v);

    g_array_append_val (arr, v);
    return TRUE;
  }
  if (!expect_wire (f, WIRE_LEN, error))
    return FALSE;
  if ((f->sub.end - f->sub.p) % 8 != 0)
    return fail (error, ONNX_ERROR_MALFORMED, "packed doubles not 8-aligned");

  for (const guint8 *q = f->sub.p; q < f->sub.end; q += 8) {
    guint64 bits = 0;
    gfloat v;

    for (guint i = 0; i < 8; i++)
      bits |= (guint64)q[i] << (8 * i);
    v = (gfloat)bits_to_double (bits);
    g_array_append_val (arr, v);
  }
  return TRUE;
}

/* ---- TensorProto ---- */

static void
tensor_free (OnnxTensor *t)
{
  if (!t)
    return;
  g_free (t->name);
  g_free (t->floats);
  g_free (t->ints);
  g_free (t);
}

static gsize
element_size (gint data_type)
{
  switch (data_type) {
    case ONNX_DT_FLOAT:
    case ONNX_DT_INT32:
      return 4;
    case ONNX_DT_INT64:
    case ONNX_DT_DOUBLE:
      return 8;
    case ONNX_DT_BOOL:
      return 1;
    default:
      return 0;
  }
}

/* Decodes little-endian raw_data into the tensor's host arrays. The caller
 * has checked that @raw holds exactly n_elements values. */
static void
decode_raw (OnnxTensor *t, const guint8 *raw)
{
  gsize n = t->n_elements;

  switch (t->data_type) {
    case ONNX_DT_FLOAT:
      t->floats = g_new (gfloat, MAX (n, 1));
      for (gsize i = 0; i < n; i++, raw += 4)
        t->floats[i] = bits_to_float (
            raw[0] | (raw[1] << 8) | (raw[2] << 16) | ((guint32)raw[3] << 24));
      break;
    case ONNX_DT_DOUBLE:
      t->floats = g_new (gfloat, MAX (n, 1));
      for (gsize i = 0; i < n; i++, raw += 8) {
        guint64 bits = 0;

        for (guint k = 0; k < 8; k++)
          bits |= (guint64)raw[k] << (8 * k);
        t->floats[i] = (gfloat)bits_to_double (bits);
      }
      break;
    case ONNX_DT_INT32:
      t->ints = g_new (gint64, MAX (n, 1));
      for (gsize i = 0; i < n; i++, raw += 4)
        t->ints[i] = (gint32)(raw[0] | (raw[1] << 8) | (raw[2] << 16) |
            ((guint32)raw[3] << 24));
      break;
    case ONNX_DT_INT64:
      t->ints = g_new (gint64, MAX (n, 1));
      for (gsize i = 0; i < n; i++, raw += 8) {
        guint64 bits = 0;

        for (guint k = 0; k < 8; k++)
          bits |= (guint64)raw[k] << (8 * k);
        t->ints[i] = (gint64)bits;
      }
      break;
    case ONNX_DT_BOOL:
      t->ints = g_new (gint64, MAX (n, 1));
      for (gsize i = 0; i < n; i++)
        t->ints[i] = raw[i] != 0;
      break;
    default:
      break;
  }
}

/* Takes ownership of the typed arrays' data once their count matches the
 * shape, so a tensor's data never disagrees with its dims. */
static gboolean
finish_tensor (OnnxTensor *t, const PbField *raw, GArray *floats, GArray *ints,
    GError **error)
{
  guint64 n = 1;

  for (guint i = 0; i < t->n_dims; i++) {
    if (t->dims[i] < 0 || (t->dims[i] > 0 && n > MAX_ELEMENTS / t->dims[i]))
      return fail (error, ONNX_ERROR_MALFORMED, "bad tensor shape");
    n *= (guint64)t->dims[i];
  }
  if (n > MAX_ELEMENTS)
    return fail (error, ONNX_ERROR_MALFORMED, "tensor too large");
  t->n_elements = n;

  if (raw) {
    gsize esize = element_size (t->data_type);

    if (esize == 0)
      return TRUE; /* shape only: the caller decides */
    if ((gsize)(raw->sub.end - raw->sub.p) != n * esize)
      return fail (error, ONNX_ERROR_MALFORMED, "raw_data size mismatch");
    decode_raw (t, raw->sub.p);
    return TRUE;
  }
  if (floats->len > 0) {
    if (floats->len != n)
      return fail (error, ONNX_ERROR_MALFORMED, "float_data size mismatch");
    t->floats = g_memdup2 (floats->data, n * sizeof (gfloat));
  } else if (ints->len > 0) {
    if (ints->len != n)
      return fail (error, ONNX_ERROR_MALFORMED, "int data size mismatch");
    t->ints = g_memdup2 (ints->data, n * sizeof (gint64));
  }
  return TRUE;
}

static gboolean
tensor_field (OnnxTensor *t, const PbField *f, PbField *raw, gboolean *have_raw,
    GArray *floats, GArray *ints, GArray *dims, GError **error)
{
  switch (f->number) {
    case 1: /* dims */
      return append_ints (dims, f, error);
    case 2: /* data_type */
      if (!expect_wire (f, WIRE_VARINT, error))
        return FALSE;
      t->data_type = (gint)(gint32)f->v;
      return TRUE;
    case 4: /* float_data */
      return append_floats (floats, f, error);
    case 5: { /* int32_data (also bool, int8...) */
      guint first = ints->len;

      if (!append_ints (ints, f, error))
        return FALSE;
      /* int32 values arrive as 64-bit varints; keep the low 32 bits. */
      for (guint i = first; i < ints->len; i++)
        g_array_index (ints, gint64, i) =
            (gint32)g_array_index (ints, gint64, i);
      return TRUE;
    }
    case 7: /* int64_data */
      return append_ints (ints, f, error);
    case 8: /* name */
      if (!expect_wire (f, WIRE_LEN, error))
        return FALSE;
      g_free (t->name);
      t->name = field_string (f);
      return TRUE;
    case 9: /* raw_data */
      if (!expect_wire (f, WIRE_LEN, error))
        return FALSE;
      *raw = *f;
      *have_raw = TRUE;
      return TRUE;
    case 10: /* double_data */
      return append_doubles (floats, f, error);
    case 13: /* external_data */
      return fail (error, ONNX_ERROR_UNSUPPORTED, "external tensor data");
    default:
      return TRUE;
  }
}

static OnnxTensor *
parse_tensor (Pb pb, GError **error)
{
  OnnxTensor *t = g_new0 (OnnxTensor, 1);
  g_autoptr (GArray) floats = g_array_new (FALSE, FALSE, sizeof (gfloat));
  g_autoptr (GArray) ints = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr (GArray) dims = g_array_new (FALSE, FALSE, sizeof (gint64));
  PbField f, raw;
  gboolean have_raw = FALSE;
  GError *err = NULL;

  while (pb_next (&pb, &f, &err)) {
    if (!tensor_field (t, &f, &raw, &have_raw, floats, ints, dims, &err))
      break;
  }
  if (!err && dims->len > ONNX_MAX_DIMS)
    fail (&err, ONNX_ERROR_UNSUPPORTED, "tensor has too many dimensions");
  if (!err) {
    t->n_dims = dims->len;
    if (dims->len > 0)
      memcpy (t->dims, dims->data, dims->len * sizeof (gint64));
    finish_tensor (t, have_raw ? &raw : NULL, floats, ints, &err);
  }
  if (err) {
    g_propagate_error (error, err);
    tensor_free (t);
    return NULL;
  }
  return t;
}

/* ---- AttributeProto, NodeProto, GraphProto ---- */

static OnnxGraph *parse_graph (Pb pb, guint depth, GError **error);
static void graph_free (OnnxGraph *g);

static void
attribute_free (OnnxAttribute *a)
{
  g_free (a->name);
  g_free (a->s);
  if (a->ints)
    g_array_unref (a->ints);
  if (a->floats)
    g_array_unref (a->floats);
  tensor_free (a->t);
  graph_free (a->g);
  g_free (a);
}

static gboolean
attribute_field (
    OnnxAttribute *a, const PbField *f, guint depth, GError **error)
{
  switch (f->number) {
    case 1: /* name */
      if (!expect_wire (f, WIRE_LEN, error))
        return FALSE;
      g_free (a->name);
      a->name = field_string (f);
      return TRUE;
    case 2: /* f */
      if (!expect_wire (f, WIRE_I32, error))
        return FALSE;
      a->f = bits_to_float ((guint32)f->v);
      return TRUE;
    case 3: /* i */
      if (!expect_wire (f, WIRE_VARINT, error))
        return FALSE;
      a->i = (gint64)f->v;
      return TRUE;
    case 4: /* s */
      if (!expect_wire (f, WIRE_LEN, error))
        return FALSE;
      g_free (a->s);
      a->s = field_string (f);
      return TRUE;
    case 5: /* t */
      if (!expect_wire (f, WIRE_LEN, error))
        return FALSE;
      tensor_free (a->t);
      a->t = parse_tensor (f->sub, error);
      return a->t != NULL;
    case 6: /* g */
      if (!expect_wire (f, WIRE_LEN, error))
        return FALSE;
      graph_free (a->g);
      a->g = parse_graph (f->sub, depth + 1, error);
      return a->g != NULL;
    case 7: /* floats */
      if (!a->floats)
        a->floats = g_array_new (FALSE, FALSE, sizeof (gfloat));
      return append_floats (a->floats, f, error);
    case 8: /* ints */
      if (!a->ints)
        a->ints = g_array_new (FALSE, FALSE, sizeof (gint64));
      return append_ints (a->ints, f, error);
    case 20: /* type */
      if (!expect_wire (f, WIRE_VARINT, error))
        return FALSE;
      a->type = (gint)(gint32)f->v;
      return TRUE;
    default:
      return TRUE;
  }
}

static OnnxAttribute *
parse_attribute (Pb pb, guint depth, GError **error)
{
  OnnxAttribute *a = g_new0 (OnnxAttribute, 1);
  PbField f;
  GError *err = NULL;

  while (pb_next (&pb, &f, &err)) {
    if (!attribute_field (a, &f, depth, &err))
      break;
  }
  if (!err && !a->name)
    fail (&err, ONNX_ERROR_MALFORMED, "attribute without a name");
  if (err) {
    g_propagate_error (error, err);
    attribute_free (a);
    return NULL;
  }
  return a;
}

static void
node_free (OnnxNode *n)
{
  g_free (n->name);
  g_free (n->op_type);
  g_ptr_array_unref (n->inputs);
  g_ptr_array_unref (n->outputs);
  g_ptr_array_unref (n->attributes);
  g_free (n);
}

static gboolean
node_field (OnnxNode *n, const PbField *f, guint depth, GError **error)
{
  OnnxAttribute *a;

  if (f->number <= 5 && !expect_wire (f, WIRE_LEN, error))
    return FALSE;
  switch (f->number) {
    case 1: /* input */
      g_ptr_array_add (n->inputs, field_string (f));
      return TRUE;
    case 2: /* output */
      g_ptr_array_add (n->outputs, field_string (f));
      return TRUE;
    case 3: /* name */
      g_free (n->name);
      n->name = field_string (f);
      return TRUE;
    case 4: /* op_type */
      g_free (n->op_type);
      n->op_type = field_string (f);
      return TRUE;
    case 5: /* attribute */
      a = parse_attribute (f->sub, depth, error);
      if (!a)
        return FALSE;
      g_ptr_array_add (n->attributes, a);
      return TRUE;
    default:
      return TRUE;
  }
}

static OnnxNode *
parse_node (Pb pb, guint depth, GError **error)
{
  OnnxNode *n = g_new0 (OnnxNode, 1);
  PbField f;
  GError *err = NULL;

  n->inputs = g_ptr_array_new_with_free_func (g_free);
  n->outputs = g_ptr_array_new_with_free_func (g_free);
  n->attributes =
      g_ptr_array_new_with_free_func ((GDestroyNotify)attribute_free);
  while (pb_next (&pb, &f, &err)) {
    if (!node_field (n, &f, depth, &err))
      break;
  }
  if (!err && !n->op_type)
    fail (&err, ONNX_ERROR_MALFORMED, "node without op_type");
  if (err) {
    g_propagate_error (error, err);
    node_free (n);
    return NULL;
  }
  return n;
}

/* ValueInfoProto: we only need its name (field 1). */
static gchar *
parse_value_info_name (Pb pb, GError **error)
{
  PbField f;
  gchar *name = NULL;
  GError *err = NULL;

  while (pb_next (&pb, &f, &err)) {
    if (f.number == 1) {
      if (!expect_wire (&f, WIRE_LEN, &err))
        break;
      g_free (name);
      name = field_string (&f);
    }
  }
  if (err) {
    g_propagate_error (error, err);
    g_free (name);
    return NULL;
  }
  return name ? name : g_strdup ("");
}

static void
graph_free (OnnxGraph *g)
{
  if (!g)
    return;
  g_free (g->name);
  g_ptr_array_unref (g->nodes);
  g_ptr_array_unref (g->initializers);
  g_ptr_array_unref (g->inputs);
  g_ptr_array_unref (g->outputs);
  g_free (g);
}

static gboolean
graph_field (OnnxGraph *g, const PbField *f, guint depth, GError **error)
{
  gpointer item = NULL;

  switch (f->number) {
    case 1: /* node */
    case 2: /* name */
    case 5: /* initializer */
    case 11: /* input */
    case 12: /* output */
      if (!expect_wire (f, WIRE_LEN, error))
        return FALSE;
      break;
    default:
      return TRUE;
  }
  switch (f->number) {
    case 1:
      item = parse_node (f->sub, depth, error);
      if (item)
        g_ptr_array_add (g->nodes, item);
      break;
    case 2:
      g_free (g->name);
      g->name = item = field_string (f);
      break;
    case 5:
      item = parse_tensor (f->sub, error);
      if (item)
        g_ptr_array_add (g->initializers, item);
      break;
    default:
      item = parse_value_info_name (f->sub, error);
      if (item)
        g_ptr_array_add (f->number == 11 ? g->inputs : g->outputs, item);
      break;
  }
  return item != NULL;
}

static OnnxGraph *
parse_graph (Pb pb, guint depth, GError **error)
{
  OnnxGraph *g;
  PbField f;
  GError *err = NULL;

  if (depth > ONNX_MAX_GRAPH_DEPTH) {
    fail (error, ONNX_ERROR_MALFORMED, "subgraphs nested too deeply");
    return NULL;
  }
  g = g_new0 (OnnxGraph, 1);
  g->nodes = g_ptr_array_new_with_free_func ((GDestroyNotify)node_free);
  g->initializers =
      g_ptr_array_new_with_free_func ((GDestroyNotify)tensor_free);
  g->inputs = g_ptr_array_new_with_free_func (g_free);
  g->outputs = g_ptr_array_new_with_free_func (g_free);
  while (pb_next (&pb, &f, &err)) {
    if (!graph_field (g, &f, depth, &err))
      break;
  }
  if (err) {
    g_propagate_error (error, err);
    graph_free (g);
    return NULL;
  }
  return g;
}

/* ---- ModelProto ---- */

/* OperatorSetIdProto: domain (1), version (2). Returns the version if the
 * domain is the default one, else -1. */
static gint64
parse_opset (Pb pb, GError **error)
{
  PbField f;
  gboolean default_domain = TRUE;
  gint64 version = 0;

  while (pb_next (&pb, &f, error)) {
    if (f.number == 1 && f.wire == WIRE_LEN)
      default_domain = f.sub.p == f.sub.end ||
          (f.sub.end - f.sub.p == 7 && !memcmp (f.sub.p, "ai.onnx", 7));
    else if (f.number == 2 && f.wire == WIRE_VARINT)
      version = (gint64)f.v;
  }
  return default_domain ? version : -1;
}

static gboolean
model_field (OnnxModel *m, const PbField *f, GError **error)
{
  gint64 v;

  switch (f->number) {
    case 1: /* ir_version */
      if (!expect_wire (f, WIRE_VARINT, error))
        return FALSE;
      m->ir_version = (gint64)f->v;
      return TRUE;
    case 2: /* producer_name */
      if (!expect_wire (f, WIRE_LEN, error))
        return FALSE;
      g_free (m->producer_name);
      m->producer_name = field_string (f);
      return TRUE;
    case 7: /* graph */
      if (!expect_wire (f, WIRE_LEN, error))
        return FALSE;
      graph_free (m->graph);
      m->graph = parse_graph (f->sub, 0, error);
      return m->graph != NULL;
    case 8: /* opset_import */
      if (!expect_wire (f, WIRE_LEN, error))
        return FALSE;
      v = parse_opset (f->sub, error);
      if (error && *error)
        return FALSE;
      if (v >= 0)
        m->opset_version = v;
      return TRUE;
    default:
      return TRUE;
  }
}

/**
 * onnx_model_parse:
 * @data: the serialized ModelProto
 * @size: its size in bytes
 *
 * Returns: (transfer full): the parsed model, or %NULL with @error set when
 * @data is not a well-formed ModelProto with a graph. The model copies all
 * it keeps; @data may be freed afterwards.
 */
OnnxModel *
onnx_model_parse (const guint8 *data, gsize size, GError **error)
{
  OnnxModel *m = g_new0 (OnnxModel, 1);
  Pb pb = { data, data + size };
  PbField f;
  GError *err = NULL;

  while (pb_next (&pb, &f, &err)) {
    if (!model_field (m, &f, &err))
      break;
  }
  if (!err && !m->graph)
    fail (&err, ONNX_ERROR_MALFORMED, "no graph in model");
  if (err) {
    g_propagate_error (error, err);
    onnx_model_free (m);
    return NULL;
  }
  return m;
}

/**
 * onnx_model_load:
 * @filename: path of an .onnx file
 *
 * Returns: (transfer full): the parsed model, or %NULL with @error set (a
 * G_FILE_ERROR if the file cannot be read, else an ONNX_ERROR).
 */
OnnxModel *
onnx_model_load (const gchar *filename, GError **error)
{
  g_autoptr (GMappedFile) map = g_mapped_file_new (filename, FALSE, error);

  if (!map)
    return NULL;
  return onnx_model_parse ((const guint8 *)g_mapped_file_get_contents (map),
      g_mapped_file_get_length (map), error);
}

void
onnx_model_free (OnnxModel *model)
{
  if (!model)
    return;
  g_free (model->producer_name);
  graph_free (model->graph);
  g_free (model);
}

/* ---- Lookups ---- */

/* Returns: (transfer none): the attribute called @name, or %NULL. */
const OnnxAttribute *
onnx_node_get_attribute (const OnnxNode *node, const gchar *name)
{
  for (guint i = 0; i < node->attributes->len; i++) {
    const OnnxAttribute *a = g_ptr_array_index (node->attributes, i);

    if (g_strcmp0 (a->name, name) == 0)
      return a;
  }
  return NULL;
}

/* Returns: (transfer none): the node of @graph that writes @output, or
 * %NULL. */
const OnnxNode *
onnx_graph_find_producer (const OnnxGraph *graph, const gchar *output)
{
  for (guint i = 0; i < graph->nodes->len; i++) {
    const OnnxNode *n = g_ptr_array_index (graph->nodes, i);

    for (guint k = 0; k < n->outputs->len; k++)
      if (g_strcmp0 (g_ptr_array_index (n->outputs, k), output) == 0)
        return n;
  }
  return NULL;
}

/**
 * onnx_graph_find_tensor:
 *
 * Finds a constant tensor by value name: an initializer of @graph, or the
 * `value` of the Constant node that produces it (exporters use both).
 *
 * Returns: (transfer none): the tensor, or %NULL.
 */
const OnnxTensor *
onnx_graph_find_tensor (const OnnxGraph *graph, const gchar *name)
{
  const OnnxNode *n;
  const OnnxAttribute *a;

  for (guint i = 0; i < graph->initializers->len; i++) {
    const OnnxTensor *t = g_ptr_array_index (graph->initializers, i);

    if (g_strcmp0 (t->name, name) == 0)
      return t;
  }
  n = onnx_graph_find_producer (graph, name);
  if (!n || g_strcmp0 (n->op_type, "Constant") != 0)
    return NULL;
  a = onnx_node_get_attribute (n, "value");
  return a ? a->t : NULL;
}

/* ---- Debug dump ---- */

static void
dump_tensor (const OnnxTensor *t, GString *out)
{
  g_string_append_printf (out, "dtype %d [", t->data_type);
  for (guint i = 0; i < t->n_dims; i++)
    g_string_append_printf (
        out, "%s%" G_GINT64_FORMAT, i ? "," : "", t->dims[i]);
  g_string_append (out, "]");
  if (t->n_elements <= 8 && (t->floats || t->ints)) {
    g_string_append (out, " =");
    for (gsize i = 0; i < t->n_elements; i++) {
      if (t->floats)
        g_string_append_printf (out, " %g", t->floats[i]);
      else
        g_string_append_printf (out, " %" G_GINT64_FORMAT, t->ints[i]);
    }
  }
}

static void
dump_attribute (const OnnxAttribute *a, GString *out, guint indent)
{
  g_string_append_printf (out, "%*s  @%s", indent, "", a->name);
  if (a->g) {
    g_string_append (out, " = graph\n");
    onnx_graph_dump (a->g, out, indent + 4);
    return;
  }
  if (a->t) {
    g_string_append (out, " = ");
    dump_tensor (a->t, out);
  } else if (a->ints) {
    g_string_append (out, " = [");
    for (guint i = 0; i < a->ints->len; i++)
      g_string_append_printf (out, "%s%" G_GINT64_FORMAT, i ? "," : "",
          g_array_index (a->ints, gint64, i));
    g_string_append (out, "]");
  } else if (a->floats) {
    g_string_append_printf (out, " = %u floats", a->floats->len);
  } else if (a->s) {
    g_string_append_printf (out, " = \"%s\"", a->s);
  } else if (a->type == ONNX_ATTR_FLOAT) {
    g_string_append_printf (out, " = %g", a->f);
  } else {
    g_string_append_printf (out, " = %" G_GINT64_FORMAT, a->i);
  }
  g_string_append_c (out, '\n');
}

/* Appends a human-readable listing of @graph to @out (for tools and
 * debugging; the format is not stable). */
void
onnx_graph_dump (const OnnxGraph *graph, GString *out, guint indent)
{
  g_string_append_printf (
      out, "%*sgraph %s\n", indent, "", graph->name ? graph->name : "");
  for (guint i = 0; i < graph->initializers->len; i++) {
    const OnnxTensor *t = g_ptr_array_index (graph->initializers, i);

    g_string_append_printf (out, "%*s  init %s: ", indent, "", t->name);
    dump_tensor (t, out);
    g_string_append_c (out, '\n');
  }
  for (guint i = 0; i < graph->nodes->len; i++) {
    const OnnxNode *n = g_ptr_array_index (graph->nodes, i);

    g_string_append_printf (
        out, "%*s%s %s (", indent, "", n->op_type, n->name ? n->name : "");
    for (guint k = 0; k < n->inputs->len; k++)
      g_string_append_printf (out, "%s%s", k ? ", " : "",
          (gchar *)g_ptr_array_index (n->inputs, k));
    g_string_append (out, ") -> ");
    for (guint k = 0; k < n->outputs->len; k++)
      g_string_append_printf (out, "%s%s", k ? ", " : "",
          (gchar *)g_ptr_array_index (n->outputs, k));
    g_string_append_c (out, '\n');
    for (guint k = 0; k < n->attributes->len; k++)
      dump_attribute (g_ptr_array_index (n->attributes, k), out, indent);
  }
}
