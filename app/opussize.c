/* voiceagent: libopus's state sizes, asked once instead of every frame.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libopus 1.3 built with custom modes (Debian's is) runs CPUID in
 * opus_custom_mode_create(), which opus_encoder_get_size() and
 * opus_decoder_get_size() call, and opus_multistream_encode() and
 * opus_multistream_decode() call those for every stream of every frame.
 * GStreamer's opusenc and opusdec use the multistream API, so that is a
 * CPUID per packet each way. On a virtual machine CPUID traps to the
 * hypervisor: on our 2-core VM it was 11 % of the server's CPU with 10
 * calls, more than Opus's own encoding and decoding.
 *
 * The sizes depend only on the channel count. The server defines both
 * functions and exports them (voiceagent.dynlist); libopus calls them
 * through its PLT, so the dynamic linker binds libopus's own calls here.
 * The first call per channel count asks the real function, found in the
 * loaded libopus by handle: RTLD_NEXT would not find it, as GStreamer
 * loads plugins, and so libopus, in a local scope.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <dlfcn.h>
#include <glib.h>

int opus_encoder_get_size (int channels);
int opus_decoder_get_size (int channels);

typedef int (*GetSize) (int channels);

/* Returns libopus's answer for @channels (1 or 2), remembered in @cache. */
static int
cached_size (const gchar *symbol, gint cache[2], int channels)
{
  gint size;
  void *lib;
  GetSize real;

  if (channels < 1 || channels > 2)
    return 0; /* libopus's answer too */
  size = g_atomic_int_get (&cache[channels - 1]);
  if (size > 0)
    return size;
  /* Only libopus calls these, so it is loaded. */
  lib = dlopen ("libopus.so.0", RTLD_NOW | RTLD_NOLOAD);
  real = lib ? (GetSize)dlsym (lib, symbol) : NULL;
  if (real == NULL)
    g_error ("%s called but libopus.so.0 is not loaded", symbol);
  size = real (channels);
  dlclose (lib);
  g_atomic_int_set (&cache[channels - 1], size);
  return size;
}

int
opus_encoder_get_size (int channels)
{
  static gint cache[2];

  return cached_size ("opus_encoder_get_size", cache, channels);
}

int
opus_decoder_get_size (int channels)
{
  static gint cache[2];

  return cached_size ("opus_decoder_get_size", cache, channels);
}
