/* A scripted chat-completions server for the llm tests.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <libsoup/soup.h>

#include "fake-server.h"

typedef struct
{
  guint status;
  GPtrArray *chunks; /* gchar* */
  gint hold_at;
  gchar *retry_after;
} Answer;

typedef struct
{
  FakeServer *fs;
  SoupServerMessage *msg;
  Answer *answer;
  guint next;
  gboolean held;
  gboolean done;
} Stream;

struct _FakeServer
{
  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  SoupServer *server; /* server thread only */
  gchar *url;

  GMutex lock;
  GCond cond;
  GQueue answers; /* Answer*, protected by lock */
  GPtrArray *bodies; /* gchar*, protected by lock */
  Stream *held; /* protected by lock */
  gchar *hook_url;
  GQueue hooks; /* Hook* answers, protected by lock */
  GPtrArray *hook_bodies; /* gchar*, protected by lock */
  GPtrArray *hook_signatures; /* gchar* (NULL: none), protected by lock */
  guint early_releases; /* releases before the hold: protected by lock */
};

static void
answer_free (Answer *a)
{
  g_ptr_array_unref (a->chunks);
  g_free (a->retry_after);
  g_free (a);
}

static gboolean send_next (gpointer data);

static void
stream_finished (SoupServerMessage *msg, gpointer data)
{
  Stream *st = data;
  FakeServer *fs = st->fs;

  g_mutex_lock (&fs->lock);
  if (fs->held == st)
    fs->held = NULL;
  g_cond_broadcast (&fs->cond);
  g_mutex_unlock (&fs->lock);
  st->done = TRUE;
}

/* The client left: libsoup has dropped the message's I/O, and an unpause
 * would be a critical ("finished" may come later, or not at all). */
static void
stream_disconnected (SoupServerMessage *msg, gpointer data)
{
  Stream *st = data;

  st->done = TRUE;
}

static void
stream_free (gpointer data)
{
  Stream *st = data;

  answer_free (st->answer);
  g_object_unref (st->msg);
  g_free (st);
}

/* Writes the next piece (server thread). */
static gboolean
send_next (gpointer data)
{
  Stream *st = data;
  SoupMessageBody *body = soup_server_message_get_response_body (st->msg);
  FakeServer *fs = st->fs;

  if (st->done)
    return G_SOURCE_REMOVE;
  if ((gint)st->next == st->answer->hold_at && !st->held) {
    gboolean wait;
    g_mutex_lock (&fs->lock);
    st->held = TRUE;
    wait = fs->early_releases == 0;
    if (wait)
      fs->held = st;
    else
      fs->early_releases--;
    g_cond_broadcast (&fs->cond);
    g_mutex_unlock (&fs->lock);
    if (wait)
      return G_SOURCE_REMOVE;
  }
  if (st->next < st->answer->chunks->len) {
    const gchar *c = g_ptr_array_index (st->answer->chunks, st->next++);
    soup_message_body_append (body, SOUP_MEMORY_COPY, c, strlen (c));
    soup_server_message_unpause (st->msg);
  }
  if (st->next >= st->answer->chunks->len) {
    st->done = TRUE;
    soup_message_body_complete (body);
    soup_server_message_unpause (st->msg);
    return G_SOURCE_REMOVE;
  }
  /* A little apart, so the client reads the pieces separately. */
  {
    GSource *s = g_timeout_source_new (2);
    g_source_set_callback (s, send_next, st, NULL);
    g_source_attach (s, fs->context);
    g_source_unref (s);
  }
  return G_SOURCE_REMOVE;
}

static void
send_error (SoupServerMessage *msg, Answer *a)
{
  GString *b = g_string_new (NULL);
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);
  guint i;

  for (i = 0; i < a->chunks->len; i++)
    g_string_append (b, g_ptr_array_index (a->chunks, i));
  if (a->retry_after)
    soup_message_headers_replace (h, "Retry-After", a->retry_after);
  soup_server_message_set_status (msg, a->status, NULL);
  soup_server_message_set_response (
      msg, "application/json", SOUP_MEMORY_COPY, b->str, b->len);
  g_string_free (b, TRUE);
  answer_free (a);
}

static void
handle (SoupServer *server, SoupServerMessage *msg, const char *path,
    GHashTable *query, gpointer data)
{
  FakeServer *fs = data;
  SoupMessageBody *req = soup_server_message_get_request_body (msg);
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);
  Answer *a;
  Stream *st;

  g_mutex_lock (&fs->lock);
  g_ptr_array_add (fs->bodies, g_strndup (req->data, req->length));
  a = g_queue_pop_head (&fs->answers);
  g_cond_broadcast (&fs->cond);
  g_mutex_unlock (&fs->lock);

  if (a == NULL) {
    static const gchar *none[] = {
      "{\"error\":{\"message\":\"no scripted answer\"}}", NULL
    };
    a = g_new0 (Answer, 1);
    a->status = 500;
    a->chunks = g_ptr_array_new_with_free_func (g_free);
    g_ptr_array_add (a->chunks, g_strdup (none[0]));
  }
  if (a->status != 200) {
    send_error (msg, a);
    return;
  }
  soup_server_message_set_status (msg, 200, NULL);
  soup_message_headers_set_content_type (h, "text/event-stream", NULL);
  soup_message_headers_set_encoding (h, SOUP_ENCODING_CHUNKED);
  st = g_new0 (Stream, 1);
  st->fs = fs;
  st->msg = g_object_ref (msg);
  st->answer = a;
  g_signal_connect (msg, "disconnected", G_CALLBACK (stream_disconnected), st);
  g_signal_connect_data (msg, "finished", G_CALLBACK (stream_finished), st,
      (GClosureNotify)(void (*) (void))stream_free, 0);
  soup_server_message_pause (msg);
  send_next (st);
}

typedef struct
{
  guint status;
  gchar *body;
  guint delay_ms;
  SoupServerMessage *msg; /* while delayed */
  gboolean finished; /* the client went away first (it timed out) */
} Hook;

static void
hook_finished (SoupServerMessage *msg, Hook *k)
{
  k->finished = TRUE;
}

static void
hook_free (Hook *k)
{
  if (k->msg)
    g_signal_handlers_disconnect_by_data (k->msg, k);
  g_free (k->body);
  g_clear_object (&k->msg);
  g_free (k);
}

static void
hook_answer (Hook *k)
{
  /* libsoup has let go of a message whose client left. */
  if (k->finished)
    return;
  soup_server_message_set_status (k->msg, k->status, NULL);
  soup_server_message_set_response (
      k->msg, "application/json", SOUP_MEMORY_COPY, k->body, strlen (k->body));
  soup_server_message_unpause (k->msg);
}

static gboolean
hook_later (gpointer data)
{
  hook_answer (data);
  return G_SOURCE_REMOVE;
}

static void
handle_hook (SoupServer *server, SoupServerMessage *msg, const char *path,
    GHashTable *query, gpointer data)
{
  FakeServer *fs = data;
  SoupMessageBody *req = soup_server_message_get_request_body (msg);
  SoupMessageHeaders *rh = soup_server_message_get_request_headers (msg);
  Hook *k;

  g_mutex_lock (&fs->lock);
  g_ptr_array_add (fs->hook_bodies, g_strndup (req->data, req->length));
  g_ptr_array_add (fs->hook_signatures,
      g_strdup (soup_message_headers_get_one (rh, "X-Voiceagent-Signature")));
  k = g_queue_pop_head (&fs->hooks);
  g_cond_broadcast (&fs->cond);
  g_mutex_unlock (&fs->lock);
  if (k == NULL) {
    k = g_new0 (Hook, 1);
    k->status = 500;
    k->body = g_strdup ("{\"error\":\"no scripted hook answer\"}");
  }
  k->msg = g_object_ref (msg);
  g_signal_connect (msg, "finished", G_CALLBACK (hook_finished), k);
  g_signal_connect (msg, "disconnected", G_CALLBACK (hook_finished), k);
  soup_server_message_pause (msg);
  if (k->delay_ms == 0) {
    hook_answer (k);
    hook_free (k);
    return;
  }
  {
    GSource *s = g_timeout_source_new (k->delay_ms);
    g_source_set_callback (s, hook_later, k, (GDestroyNotify)hook_free);
    g_source_attach (s, fs->context);
    g_source_unref (s);
  }
}

static gpointer
server_thread (gpointer data)
{
  FakeServer *fs = data;

  g_main_context_push_thread_default (fs->context);
  g_main_loop_run (fs->loop);
  g_main_context_pop_thread_default (fs->context);
  return NULL;
}

static gboolean
quit_loop (gpointer data)
{
  FakeServer *fs = data;

  soup_server_disconnect (fs->server);
  g_main_loop_quit (fs->loop);
  return G_SOURCE_REMOVE;
}

FakeServer *
fake_server_new (void)
{
  FakeServer *fs = g_new0 (FakeServer, 1);
  GError *err = NULL;
  GSList *uris;

  g_mutex_init (&fs->lock);
  g_cond_init (&fs->cond);
  g_queue_init (&fs->answers);
  fs->bodies = g_ptr_array_new_with_free_func (g_free);
  fs->context = g_main_context_new ();
  fs->loop = g_main_loop_new (fs->context, FALSE);

  g_main_context_push_thread_default (fs->context);
  fs->server = soup_server_new (NULL, NULL);
  soup_server_add_handler (
      fs->server, "/v1/chat/completions", handle, fs, NULL);
  soup_server_add_handler (fs->server, "/hook", handle_hook, fs, NULL);
  g_queue_init (&fs->hooks);
  fs->hook_bodies = g_ptr_array_new_with_free_func (g_free);
  fs->hook_signatures = g_ptr_array_new_with_free_func (g_free);
  if (!soup_server_listen_local (
          fs->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &err))
    g_error ("fake server: %s", err->message);
  g_main_context_pop_thread_default (fs->context);
  uris = soup_server_get_uris (fs->server);
  fs->url =
      g_strdup_printf ("http://127.0.0.1:%d/v1", g_uri_get_port (uris->data));
  fs->hook_url =
      g_strdup_printf ("http://127.0.0.1:%d/hook", g_uri_get_port (uris->data));
  g_slist_free_full (uris, (GDestroyNotify)g_uri_unref);
  fs->thread = g_thread_new ("fake-llm", server_thread, fs);
  return fs;
}

void
fake_server_free (FakeServer *fs)
{
  g_main_context_invoke (fs->context, quit_loop, fs);
  g_thread_join (fs->thread);
  /* Let closed connections finish (finished handlers free streams). */
  while (g_main_context_iteration (fs->context, FALSE))
    ;
  g_object_unref (fs->server);
  while (g_main_context_iteration (fs->context, FALSE))
    ;
  g_main_loop_unref (fs->loop);
  g_main_context_unref (fs->context);
  g_queue_clear_full (&fs->answers, (GDestroyNotify)answer_free);
  g_ptr_array_unref (fs->bodies);
  g_queue_clear_full (&fs->hooks, (GDestroyNotify)hook_free);
  g_ptr_array_unref (fs->hook_bodies);
  g_ptr_array_unref (fs->hook_signatures);
  g_free (fs->hook_url);
  g_mutex_clear (&fs->lock);
  g_cond_clear (&fs->cond);
  g_free (fs->url);
  g_free (fs);
}

const gchar *
fake_server_url (FakeServer *fs)
{
  return fs->url;
}

void
fake_server_add_answer (FakeServer *fs, guint status,
    const gchar *const *chunks, gint hold_at, const gchar *retry_after)
{
  Answer *a = g_new0 (Answer, 1);

  a->status = status;
  a->chunks = g_ptr_array_new_with_free_func (g_free);
  for (; chunks && *chunks; chunks++)
    g_ptr_array_add (a->chunks, g_strdup (*chunks));
  a->hold_at = hold_at;
  a->retry_after = g_strdup (retry_after);
  g_mutex_lock (&fs->lock);
  g_queue_push_tail (&fs->answers, a);
  g_mutex_unlock (&fs->lock);
}

static gchar *
json_quote (const gchar *s)
{
  GString *out = g_string_new ("\"");

  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      g_string_append_printf (out, "\\%c", *s);
    else if (*s == '\n')
      g_string_append (out, "\\n");
    else
      g_string_append_c (out, *s);
  }
  g_string_append_c (out, '"');
  return g_string_free (out, FALSE);
}

void
fake_server_add_stream (FakeServer *fs, const gchar *const *pieces)
{
  GPtrArray *chunks = g_ptr_array_new_with_free_func (g_free);

  g_ptr_array_add (chunks,
      g_strdup ("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\","
                "\"choices\":[{\"index\":0,\"delta\":{\"role\":"
                "\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}"
                "\n\n"));
  for (; *pieces; pieces++) {
    gchar *q = json_quote (*pieces);
    g_ptr_array_add (chunks,
        g_strdup_printf ("data: {\"id\":\"c1\",\"object\":"
                         "\"chat.completion.chunk\",\"choices\":[{\"index\":"
                         "0,\"delta\":{\"content\":%s},\"finish_reason\":"
                         "null}]}\n\n",
            q));
    g_free (q);
  }
  g_ptr_array_add (chunks,
      g_strdup ("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\","
                "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":"
                "\"stop\"}]}\n\ndata: [DONE]\n\n"));
  g_ptr_array_add (chunks, NULL);
  fake_server_add_answer (
      fs, 200, (const gchar *const *)chunks->pdata, -1, NULL);
  g_ptr_array_unref (chunks);
}

static gboolean
release_on_server (gpointer data)
{
  FakeServer *fs = data;
  Stream *st;

  g_mutex_lock (&fs->lock);
  st = fs->held;
  fs->held = NULL;
  /* Released before the answer got to its hold: do not stop there. */
  if (st == NULL)
    fs->early_releases++;
  g_mutex_unlock (&fs->lock);
  if (st && !st->done)
    send_next (st);
  return G_SOURCE_REMOVE;
}

void
fake_server_release (FakeServer *fs)
{
  g_main_context_invoke (fs->context, release_on_server, fs);
}

guint
fake_server_n_requests (FakeServer *fs)
{
  guint n;

  g_mutex_lock (&fs->lock);
  n = fs->bodies->len;
  g_mutex_unlock (&fs->lock);
  return n;
}

gchar *
fake_server_get_body (FakeServer *fs, guint i)
{
  gchar *body = NULL;

  g_mutex_lock (&fs->lock);
  if (i < fs->bodies->len)
    body = g_strdup (g_ptr_array_index (fs->bodies, i));
  g_mutex_unlock (&fs->lock);
  return body;
}

static gboolean
wait_until (FakeServer *fs, gboolean (*done) (FakeServer *, guint), guint n,
    guint timeout_ms)
{
  gint64 deadline =
      g_get_monotonic_time () + timeout_ms * G_TIME_SPAN_MILLISECOND;
  gboolean ok;

  g_mutex_lock (&fs->lock);
  while (!(ok = done (fs, n)) &&
      g_cond_wait_until (&fs->cond, &fs->lock, deadline))
    ;
  g_mutex_unlock (&fs->lock);
  return ok;
}

static gboolean
has_requests (FakeServer *fs, guint n)
{
  return fs->bodies->len >= n;
}

gboolean
fake_server_wait_requests (FakeServer *fs, guint n, guint timeout_ms)
{
  return wait_until (fs, has_requests, n, timeout_ms);
}

const gchar *
fake_server_hook_url (FakeServer *fs)
{
  return fs->hook_url;
}

void
fake_server_add_hook (
    FakeServer *fs, guint status, const gchar *body, guint delay_ms)
{
  Hook *k = g_new0 (Hook, 1);

  k->status = status;
  k->body = g_strdup (body);
  k->delay_ms = delay_ms;
  g_mutex_lock (&fs->lock);
  g_queue_push_tail (&fs->hooks, k);
  g_mutex_unlock (&fs->lock);
}

guint
fake_server_n_hooks (FakeServer *fs)
{
  guint n;

  g_mutex_lock (&fs->lock);
  n = fs->hook_bodies->len;
  g_mutex_unlock (&fs->lock);
  return n;
}

gchar *
fake_server_get_hook (FakeServer *fs, guint i, gchar **signature)
{
  gchar *body = NULL;

  g_mutex_lock (&fs->lock);
  if (i < fs->hook_bodies->len) {
    body = g_strdup (g_ptr_array_index (fs->hook_bodies, i));
    if (signature)
      *signature = g_strdup (g_ptr_array_index (fs->hook_signatures, i));
  }
  g_mutex_unlock (&fs->lock);
  return body;
}

static gboolean
has_hooks (FakeServer *fs, guint n)
{
  return fs->hook_bodies->len >= n;
}

gboolean
fake_server_wait_hooks (FakeServer *fs, guint n, guint timeout_ms)
{
  return wait_until (fs, has_hooks, n, timeout_ms);
}
