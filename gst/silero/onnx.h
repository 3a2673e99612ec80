/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A small, self-contained reader for the ONNX protobuf format: just enough of
 * ModelProto / GraphProto / NodeProto / AttributeProto / TensorProto to walk a
 * graph and pull out its weights. It never trusts the input: every length is
 * checked against the buffer, nesting depth is bounded, and memory allocated
 * is bounded by the input size (never by a declared tensor shape).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ONNX_MAX_DIMS 8
/* Subgraphs nest through attributes (If, Loop); the Silero model uses 2. */
#define ONNX_MAX_GRAPH_DEPTH 8

#define ONNX_ERROR (onnx_error_quark ())
GQuark onnx_error_quark (void);

typedef enum {
  ONNX_ERROR_TRUNCATED, /* a field runs past the end of its message */
  ONNX_ERROR_MALFORMED, /* bad wire type, varint, nesting or size */
  ONNX_ERROR_UNSUPPORTED /* valid protobuf, but not something we can use */
} OnnxError;

/* TensorProto.DataType values we care about. */
typedef enum {
  ONNX_DT_UNDEFINED = 0,
  ONNX_DT_FLOAT = 1,
  ONNX_DT_INT32 = 6,
  ONNX_DT_INT64 = 7,
  ONNX_DT_BOOL = 9,
  ONNX_DT_DOUBLE = 11,
} OnnxDataType;

/* AttributeProto.AttributeType */
typedef enum {
  ONNX_ATTR_UNDEFINED = 0,
  ONNX_ATTR_FLOAT = 1,
  ONNX_ATTR_INT = 2,
  ONNX_ATTR_STRING = 3,
  ONNX_ATTR_TENSOR = 4,
  ONNX_ATTR_GRAPH = 5,
  ONNX_ATTR_FLOATS = 6,
  ONNX_ATTR_INTS = 7,
} OnnxAttrType;

typedef struct _OnnxGraph OnnxGraph;

/* A tensor with its data decoded to host order. Only FLOAT (and DOUBLE,
 * narrowed) fill @floats; INT32, INT64 and BOOL fill @ints. Other types keep
 * their shape but no data. The tensor owns both arrays. */
typedef struct
{
  gchar *name;
  gint data_type;
  guint n_dims;
  gint64 dims[ONNX_MAX_DIMS];
  gsize n_elements; /* product of dims (1 for a scalar) */
  gfloat *floats; /* n_elements values, or NULL */
  gint64 *ints; /* n_elements values, or NULL */
} OnnxTensor;

typedef struct
{
  gchar *name;
  gint type; /* OnnxAttrType; 0 if the writer did not say */
  gfloat f;
  gint64 i;
  gchar *s; /* NUL-terminated copy of the bytes, or NULL */
  GArray *ints; /* gint64, or NULL */
  GArray *floats; /* gfloat, or NULL */
  OnnxTensor *t; /* or NULL */
  OnnxGraph *g; /* or NULL */
} OnnxAttribute;

typedef struct
{
  gchar *name;
  gchar *op_type;
  GPtrArray *inputs; /* gchar *; "" marks an omitted optional input */
  GPtrArray *outputs; /* gchar * */
  GPtrArray *attributes; /* OnnxAttribute * */
} OnnxNode;

struct _OnnxGraph
{
  gchar *name;
  GPtrArray *nodes; /* OnnxNode * */
  GPtrArray *initializers; /* OnnxTensor * */
  GPtrArray *inputs; /* gchar *, names of ValueInfoProto inputs */
  GPtrArray *outputs; /* gchar * */
};

typedef struct
{
  gint64 ir_version;
  gint64 opset_version; /* of the default domain, 0 if absent */
  gchar *producer_name;
  OnnxGraph *graph;
} OnnxModel;

OnnxModel *onnx_model_parse (const guint8 *data, gsize size, GError **error);
OnnxModel *onnx_model_load (const gchar *filename, GError **error);
void onnx_model_free (OnnxModel *model);

const OnnxAttribute *onnx_node_get_attribute (
    const OnnxNode *node, const gchar *name);
const OnnxTensor *onnx_graph_find_tensor (
    const OnnxGraph *graph, const gchar *name);
const OnnxNode *onnx_graph_find_producer (
    const OnnxGraph *graph, const gchar *output);

void onnx_graph_dump (const OnnxGraph *graph, GString *out, guint indent);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (OnnxModel, onnx_model_free)

G_END_DECLS
