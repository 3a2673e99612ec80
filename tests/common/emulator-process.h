/* Starts and stops voiceagent-emulator for a test.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _EmuProcess EmuProcess;

/* Starts the emulator from $VOICEAGENT_EMULATOR on 127.0.0.1 with a free
 * port, with @args (NULL-terminated, may be NULL) added to its command
 * line, e.g. { "--stt-engine", "scripted", NULL }. Waits until it listens.
 * Returns NULL (and says why on stderr) if it cannot start: tests then
 * fail, they do not skip. */
EmuProcess *emu_process_start (const gchar *const *args);

/* Starts any program that takes --port 0 --port-file FILE the same way
 * (the voiceagent server too). */
EmuProcess *emu_process_start_program (
    const gchar *exe, const gchar *const *args);
/* The same, with the program's stderr written to the file @stderr_path
 * (NULL: the test's own), for a test that reads what it logged. */
EmuProcess *emu_process_start_logged (
    const gchar *exe, const gchar *const *args, const gchar *stderr_path);
/* The same, with stdout and stderr both written to @log_path. */
EmuProcess *emu_process_start_logged_all (
    const gchar *exe, const gchar *const *args, const gchar *log_path);

/* Kills the emulator (SIGTERM, then waits) and frees @emu. */
void emu_process_stop (EmuProcess *emu);

guint emu_process_get_port (EmuProcess *emu);
guint emu_process_get_pid (EmuProcess *emu);
/* "http://127.0.0.1:PORT" and "ws://127.0.0.1:PORT": owned by @emu. */
const gchar *emu_process_get_http_url (EmuProcess *emu);
const gchar *emu_process_get_ws_url (EmuProcess *emu);

/* GET or POST (when @body is non-NULL, as JSON) a path on the emulator, e.g.
 * "/emulator/events"; returns the response body (free it) or NULL. With
 * VOICEAGENT_ADMIN_TOKEN set (the test environment sets it, so every
 * voiceagent a test starts has it) it is sent as the bearer token, which
 * a voiceagent's /calls and /metrics need. */
gchar *emu_process_request (
    EmuProcess *emu, const gchar *path, const gchar *body, guint *status);

G_END_DECLS
