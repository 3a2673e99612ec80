/* voiceagent: local backends (the emulator) for services without keys.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "vaconfig.h"

G_BEGIN_DECLS

typedef struct _VaBackends VaBackends;

/* For each service with neither a key nor a URL configured, points the
 * configuration at a voiceagent-emulator it starts on loopback, and puts
 * every key the elements need into the environment. Says on stdout which
 * service runs where. Returns NULL with @error if the emulator is needed
 * and cannot start. */
VaBackends *va_backends_start (VaConfig *config, GError **error);
void va_backends_stop (VaBackends *backends);

G_END_DECLS
