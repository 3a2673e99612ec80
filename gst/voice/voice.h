/* gst-voiceagent: the shared voice library, included by every plugin.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "voiceagent.h"
#include "gstvoiceoptions.h"
#include "gstvoicequeue.h"
#include "gstvoicesession.h"
#include "gstvoicepair.h"
#include "gstvoiceclient.h"
#include "gstvoiceredact.h"
#include "gstvoicehttp.h"
#include "gstvoicedeferred.h"
#include "gstvoiceturn.h"
