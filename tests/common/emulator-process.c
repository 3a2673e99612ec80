/* Starts and stops voiceagent-emulator for a test.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <gio/gio.h>
#include <libsoup/soup.h>
#include "emulator-process.h"
#include "test-process.h"

#define START_TIMEOUT_US (20 * G_USEC_PER_SEC)

struct _EmuProcess
{
  GSubprocess *proc;
  gchar *port_file;
  guint port;
  gchar *http_url;
  gchar *ws_url;
};

/* Ready once it has written its port to the port file. */
static gboolean
read_port (gpointer data)
{
  EmuProcess *emu = data;
  gchar *text = NULL;
  gboolean ok = FALSE;

  if (g_file_get_contents (emu->port_file, &text, NULL, NULL) && *text) {
    emu->port = (guint)g_ascii_strtoull (text, NULL, 10);
    ok = emu->port > 0;
  }
  g_free (text);
  return ok;
}

EmuProcess *
emu_process_start (const gchar *const *args)
{
  const gchar *exe = g_getenv ("VOICEAGENT_EMULATOR");

  if (exe == NULL) {
    g_printerr ("VOICEAGENT_EMULATOR is not set (run through meson test)\n");
    return NULL;
  }
  return emu_process_start_program (exe, args);
}

EmuProcess *
emu_process_start_program (const gchar *exe, const gchar *const *args)
{
  return emu_process_start_logged (exe, args, NULL);
}

static EmuProcess *start (const gchar *exe, const gchar *const *args,
    const gchar *log_path, GSubprocessFlags flags);

EmuProcess *
emu_process_start_logged (
    const gchar *exe, const gchar *const *args, const gchar *stderr_path)
{
  return start (exe, args, stderr_path, G_SUBPROCESS_FLAGS_NONE);
}

EmuProcess *
emu_process_start_logged_all (
    const gchar *exe, const gchar *const *args, const gchar *log_path)
{
  return start (exe, args, log_path, G_SUBPROCESS_FLAGS_STDERR_MERGE);
}

static EmuProcess *
start (const gchar *exe, const gchar *const *args, const gchar *log_path,
    GSubprocessFlags flags)
{
  GPtrArray *argv;
  EmuProcess *emu;
  GError *error = NULL;
  gint fd;

  emu = g_new0 (EmuProcess, 1);
  fd = g_file_open_tmp ("emu-port-XXXXXX", &emu->port_file, NULL);
  if (fd >= 0)
    close (fd);

  argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer)exe);
  g_ptr_array_add (argv, (gpointer) "--port");
  g_ptr_array_add (argv, (gpointer) "0");
  g_ptr_array_add (argv, (gpointer) "--port-file");
  g_ptr_array_add (argv, emu->port_file);
  for (; args && *args; args++)
    g_ptr_array_add (argv, (gpointer)*args);
  g_ptr_array_add (argv, NULL);

  emu->proc = test_process_spawn (
      (const gchar *const *)argv->pdata, log_path, flags, &error);
  g_ptr_array_free (argv, TRUE);
  if (emu->proc == NULL) {
    g_printerr ("cannot start %s: %s\n", exe, error->message);
    g_error_free (error);
    emu_process_stop (emu);
    return NULL;
  }
  if (!test_process_wait_ready (
          emu->proc, exe, read_port, emu, START_TIMEOUT_US)) {
    emu_process_stop (emu);
    return NULL;
  }
  emu->http_url = g_strdup_printf ("http://127.0.0.1:%u", emu->port);
  emu->ws_url = g_strdup_printf ("ws://127.0.0.1:%u", emu->port);
  return emu;
}

void
emu_process_stop (EmuProcess *emu)
{
  if (emu == NULL)
    return;
  test_process_stop (&emu->proc, SIGTERM, 10 * G_USEC_PER_SEC);
  if (emu->port_file) {
    g_unlink (emu->port_file);
    g_free (emu->port_file);
  }
  g_free (emu->http_url);
  g_free (emu->ws_url);
  g_free (emu);
}

guint
emu_process_get_port (EmuProcess *emu)
{
  return emu->port;
}

guint
emu_process_get_pid (EmuProcess *emu)
{
  const gchar *id = g_subprocess_get_identifier (emu->proc);

  return id ? (guint)g_ascii_strtoull (id, NULL, 10) : 0;
}

const gchar *
emu_process_get_http_url (EmuProcess *emu)
{
  return emu->http_url;
}

const gchar *
emu_process_get_ws_url (EmuProcess *emu)
{
  return emu->ws_url;
}

gchar *
emu_process_request (
    EmuProcess *emu, const gchar *path, const gchar *body, guint *status)
{
  SoupSession *session = soup_session_new ();
  gchar *url = g_strconcat (emu->http_url, path, NULL);
  SoupMessage *msg = soup_message_new (body ? "POST" : "GET", url);
  const gchar *admin = g_getenv ("VOICEAGENT_ADMIN_TOKEN");
  GBytes *reply;
  gchar *text = NULL;

  if (body) {
    GBytes *b = g_bytes_new (body, strlen (body));
    soup_message_set_request_body_from_bytes (msg, "application/json", b);
    g_bytes_unref (b);
  }
  if (admin) {
    gchar *auth = g_strconcat ("Bearer ", admin, NULL);
    soup_message_headers_replace (
        soup_message_get_request_headers (msg), "Authorization", auth);
    g_free (auth);
  }
  reply = soup_session_send_and_read (session, msg, NULL, NULL);
  if (status)
    *status = soup_message_get_status (msg);
  if (reply) {
    text = g_strndup (g_bytes_get_data (reply, NULL), g_bytes_get_size (reply));
    g_bytes_unref (reply);
  }
  g_object_unref (msg);
  g_free (url);
  g_object_unref (session);
  return text;
}
