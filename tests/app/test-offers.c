/* Offers that real clients sent (tests/app/offers, listed with their
 * source and expected status in tests/app/offers/SOURCES.md), POSTed to the
 * real voiceagent binary with the echo test template. Each must get the
 * status SOURCES.md names: 201 with an answer whose audio section is
 * accepted with Opus and whose other media is rejected or inactive, or the
 * documented refusal (docs/http-api.md: 400, 422) with a JSON reason.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <gst/check/gstcheck.h>
#include <libsoup/soup.h>
#include "emulator-process.h"

static gchar *
offers_dir (void)
{
  return g_build_filename (
      g_getenv ("VOICEAGENT_SOURCE_DIR"), "tests", "app", "offers", NULL);
}

/* file name → expected status, from SOURCES.md's table rows
 * "| `NAME.sdp` | client | source | STATUS | notes |". */
static GHashTable *
read_expectations (void)
{
  gchar *dir = offers_dir ();
  gchar *path = g_build_filename (dir, "SOURCES.md", NULL);
  GHashTable *t = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  gchar *text = NULL, **lines;
  guint i;

  fail_unless (g_file_get_contents (path, &text, NULL, NULL), "no %s", path);
  lines = g_strsplit (text, "\n", -1);
  for (i = 0; lines[i]; i++) {
    gchar **cells;

    if (!g_str_has_prefix (lines[i], "| `"))
      continue;
    cells = g_strsplit (lines[i], "|", -1);
    if (g_strv_length (cells) >= 6) {
      gchar *name = g_strstrip (g_strdelimit (cells[1], "`", ' '));
      guint status = (guint)g_ascii_strtoull (g_strstrip (cells[4]), NULL, 10);
      fail_unless (status == 201 || status == 400 || status == 422,
          "SOURCES.md: %s: expected status %s", name, cells[4]);
      g_hash_table_insert (t, g_strdup (name), GUINT_TO_POINTER (status));
    }
    g_strfreev (cells);
  }
  g_strfreev (lines);
  g_free (text);
  g_free (path);
  g_free (dir);
  return t;
}

/* The answer accepts one audio section with Opus, and no video. */
static void
check_answer (const gchar *name, const gchar *answer)
{
  gchar **sections = g_strsplit (answer, "\nm=", -1);
  gboolean audio = FALSE;
  guint i;

  for (i = 1; sections[i]; i++) {
    gchar *s = g_ascii_strdown (sections[i], -1);
    gboolean rejected = g_str_has_prefix (s, "audio 0 ") ||
        g_str_has_prefix (s, "video 0 ") ||
        g_str_has_prefix (s, "application 0 ");

    if (g_str_has_prefix (s, "audio ") && !rejected &&
        strstr (s, " opus/48000"))
      audio = TRUE;
    if (g_str_has_prefix (s, "video ") && !rejected)
      fail_unless (strstr (s, "a=inactive") != NULL,
          "%s: the answer accepts video:\nm=%s", name, sections[i]);
    g_free (s);
  }
  fail_unless (
      audio, "%s: no accepted Opus audio in the answer:\n%s", name, answer);
  g_strfreev (sections);
}

static void
post_offer (SoupSession *http, EmuProcess *server, const gchar *dir,
    const gchar *name, guint expected)
{
  gchar *path = g_build_filename (dir, name, NULL);
  gchar *url = g_strconcat (emu_process_get_http_url (server), "/whip", NULL);
  gchar *sdp = NULL, *body = NULL;
  gsize len;
  SoupMessage *msg = soup_message_new ("POST", url);
  GBytes *b, *reply;
  guint status;

  fail_unless (g_file_get_contents (path, &sdp, &len, NULL));
  b = g_bytes_new_take (sdp, len);
  soup_message_set_request_body_from_bytes (msg, "application/sdp", b);
  g_bytes_unref (b);
  reply = soup_session_send_and_read (http, msg, NULL, NULL);
  status = soup_message_get_status (msg);
  if (reply)
    body = g_strndup (g_bytes_get_data (reply, NULL), g_bytes_get_size (reply));
  g_print ("%s: %u %s\n", name, status,
      status == 201 ? "(answer)" : (body ? body : ""));
  fail_unless_equals_int (status, expected);
  if (status == 201) {
    SoupMessageHeaders *h = soup_message_get_response_headers (msg);
    const gchar *location = soup_message_headers_get_one (h, "Location");
    GUri *base = g_uri_parse (url, G_URI_FLAGS_NONE, NULL), *session;
    SoupMessage *hangup;

    fail_unless (g_str_has_prefix (
        soup_message_headers_get_content_type (h, NULL), "application/sdp"));
    check_answer (name, body);
    /* Hang up: each call holds a pipeline. */
    fail_unless (location != NULL, "%s: no Location", name);
    session = g_uri_parse_relative (base, location, G_URI_FLAGS_NONE, NULL);
    hangup = soup_message_new_from_uri ("DELETE", session);
    g_bytes_unref (soup_session_send_and_read (http, hangup, NULL, NULL));
    fail_unless_equals_int (soup_message_get_status (hangup), 200);
    g_object_unref (hangup);
    g_uri_unref (session);
    g_uri_unref (base);
  } else {
    gchar *status_member = g_strdup_printf ("\"status\":%u", status);

    fail_unless (body && g_str_has_prefix (body, "{\"error\":\"") &&
            body[10] != '"' && strstr (body, status_member),
        "%s: the refusal has no JSON reason: %s", name, body);
    g_free (status_member);
  }
  g_clear_pointer (&reply, g_bytes_unref);
  g_object_unref (msg);
  g_free (body);
  g_free (url);
  g_free (path);
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const gchar *const *)a, *(const gchar *const *)b);
}

GST_START_TEST (test_real_offers)
{
  gchar *dir = offers_dir ();
  gchar *pipelines = g_build_filename (
      g_getenv ("VOICEAGENT_SOURCE_DIR"), "tests", "app", "pipelines", NULL);
  gchar *db = g_build_filename (g_get_tmp_dir (), "voiceagent-offers.db", NULL);
  const gchar *args[] = { "--pipelines", pipelines, "--database", db,
    "--ice-timeout-ms", "500", "--drain-timeout", "1", NULL };
  GHashTable *expected = read_expectations ();
  GDir *d = g_dir_open (dir, 0, NULL);
  SoupSession *http = soup_session_new_with_options ("timeout", 30, NULL);
  EmuProcess *server;
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  const gchar *name;
  guint i;

  fail_unless (d != NULL, "no %s", dir);
  while ((name = g_dir_read_name (d))) {
    if (g_str_has_suffix (name, ".sdp"))
      g_ptr_array_add (names, g_strdup (name));
  }
  g_dir_close (d);
  g_ptr_array_sort (names, compare_names);
  fail_unless (names->len >= 15, "only %u offers", names->len);
  fail_unless (
      g_getenv ("VOICEAGENT_BIN") != NULL, "VOICEAGENT_BIN is not set");
  g_setenv ("DEEPGRAM_API_KEY", "test-key-dg", TRUE);
  g_setenv ("ELEVENLABS_API_KEY", "test-key-el", TRUE);
  g_setenv ("LLM_API_KEY", "test-key-llm", TRUE);
  server = emu_process_start_program (g_getenv ("VOICEAGENT_BIN"), args);
  fail_unless (server != NULL, "voiceagent did not start");
  for (i = 0; i < names->len; i++) {
    const gchar *n = g_ptr_array_index (names, i);
    gpointer status;

    fail_unless (g_hash_table_lookup_extended (expected, n, NULL, &status),
        "%s is not in SOURCES.md", n);
    post_offer (http, server, dir, n, GPOINTER_TO_UINT (status));
  }
  fail_unless_equals_int (g_hash_table_size (expected), names->len);
  emu_process_stop (server);
  g_object_unref (http);
  g_ptr_array_unref (names);
  g_hash_table_unref (expected);
  g_free (pipelines);
  g_free (db);
  g_free (dir);
}

GST_END_TEST;

static Suite *
offers_suite (void)
{
  Suite *s = suite_create ("offers");
  TCase *tc = tcase_create ("general");

  tcase_set_timeout (tc, 180);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_real_offers);
  return s;
}

GST_CHECK_MAIN (offers);
