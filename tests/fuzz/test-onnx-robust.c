/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The fuzz target's entry point on deterministic damage to the real model:
 * every truncation length on a grid (and each of the first bytes), random
 * byte changes with a fixed seed, and edits aimed at the protobuf framing
 * (lengths, keys, varints). Runs in normal CI (with the sanitizers there),
 * so the reader's robustness is checked without clang or libFuzzer.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <glib.h>
#include <string.h>

#include "model.h"

int LLVMFuzzerTestOneInput (const guint8 *data, gsize size);

static guint8 *model_data;
static gsize model_size;

static void
run (const guint8 *data, gsize size)
{
  /* A private copy, so ASan catches any read past the end. */
  guint8 *copy = g_memdup2 (data, size);

  LLVMFuzzerTestOneInput (copy, size);
  g_free (copy);
}

/* The intact model parses and loads. */
static void
test_intact (void)
{
  GError *err = NULL;
  g_autoptr (OnnxModel) onnx = onnx_model_parse (model_data, model_size, &err);
  g_autoptr (SileroModel) model = NULL;

  g_assert_no_error (err);
  model = silero_model_new_from_onnx (onnx, &err);
  g_assert_no_error (err);
  g_assert_nonnull (model);
}

/* Every prefix fails cleanly (or, rarely, still parses). */
static void
test_truncated (void)
{
  for (gsize n = 0; n < 512; n++)
    run (model_data, n);
  for (gsize n = 512; n < model_size; n += 8191)
    run (model_data, n);
  run (model_data, model_size - 1);
}

/* Random bytes changed in random places. */
static void
test_mutated (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (20260101);
  guint8 *buf = g_memdup2 (model_data, model_size);

  for (guint iter = 0; iter < 200; iter++) {
    guint edits = g_rand_int_range (rand, 1, 9);
    gsize at[8];
    guint8 old[8];

    for (guint e = 0; e < edits; e++) {
      /* Half the edits in the first 64 KiB, where the framing is dense. */
      gsize lim = g_rand_boolean (rand) ? MIN (model_size, 65536) : model_size;

      at[e] = g_rand_int_range (rand, 0, (gint32)lim);
      old[e] = buf[at[e]];
      buf[at[e]] = (guint8)g_rand_int (rand);
    }
    run (buf, model_size);
    for (gint e = edits - 1; e >= 0; e--)
      buf[at[e]] = old[e];
  }
  g_free (buf);
}

/* Appends field @key (a one-byte tag, wire type LEN) holding @body. */
static void
append_field (GByteArray *out, guint8 key, GByteArray *body)
{
  guint64 len = body->len;

  g_byte_array_append (out, &key, 1);
  do {
    guint8 b = (len & 0x7f) | (len > 0x7f ? 0x80 : 0);

    g_byte_array_append (out, &b, 1);
    len >>= 7;
  } while (len);
  g_byte_array_append (out, body->data, body->len);
}

/* Framing attacks: huge lengths, bad wire types, endless varints. */
static void
test_framing (void)
{
  static const guint8 cases[][16] = {
    /* graph (field 7, LEN) claiming 2^63 bytes */
    { 0x3a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
    /* an 11-byte varint */
    { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 },
    /* wire type 3 (group) */
    { 0x0b, 0x00 },
    /* field number 0 */
    { 0x00, 0x00 },
    /* graph with a node with an attribute with a graph, nested */
    { 0x3a, 0x08, 0x0a, 0x06, 0x2a, 0x04, 0x32, 0x02, 0x0a, 0x00 },
    /* a tensor whose dims overflow 64 bits, with no data */
    { 0x3a, 0x0e, 0x2a, 0x0c, 0x0a, 0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0x01 },
  };
  g_autoptr (GByteArray) g = g_byte_array_new ();

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    run (cases[i], sizeof cases[i]);

  /* Subgraphs nested far beyond ONNX_MAX_GRAPH_DEPTH, built from the
   * inside: graph { node "If" { attribute "g" { g: graph { ... } } } }. */
  for (guint level = 0; level < 50; level++) {
    g_autoptr (GByteArray) attr = g_byte_array_new ();
    g_autoptr (GByteArray) node = g_byte_array_new ();

    g_byte_array_append (attr, (const guint8 *)"\x0a\x01g", 3);
    append_field (attr, 0x32, g);
    g_byte_array_append (node, (const guint8 *)"\x22\x02If", 4);
    append_field (node, 0x2a, attr);
    g_byte_array_set_size (g, 0);
    append_field (g, 0x0a, node);
  }
  {
    g_autoptr (GByteArray) model = g_byte_array_new ();

    append_field (model, 0x3a, g);
    run (model->data, model->len);
  }

  /* Bytes of the model's first 2 KiB (where the framing of the first
   * graph, nodes and tensors is) set to 0xff: each of the first 512, then
   * every 7th. Most mutants still load, which is slow under ASan. */
  {
    guint8 *buf = g_memdup2 (model_data, model_size);

    for (gsize i = 0; i < 2048; i += i < 512 ? 1 : 7) {
      guint8 old = buf[i];

      buf[i] = 0xff;
      run (buf, model_size);
      buf[i] = old;
    }
    g_free (buf);
  }
}

int
main (int argc, char **argv)
{
  const gchar *dir = g_getenv ("VOICEAGENT_MODEL_DIR");
  g_autofree gchar *path = g_build_filename (
      dir ? dir : VOICEAGENT_MODEL_DIR, "silero_vad.onnx", NULL);
  GError *err = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);
  g_file_get_contents (path, (gchar **)&model_data, &model_size, &err);
  g_assert_no_error (err);
  g_test_add_func ("/onnx/intact", test_intact);
  g_test_add_func ("/onnx/truncated", test_truncated);
  g_test_add_func ("/onnx/mutated", test_mutated);
  g_test_add_func ("/onnx/framing", test_framing);
  ret = g_test_run ();
  g_free (model_data);
  return ret;
}
