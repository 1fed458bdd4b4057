/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for the cluster channel codec (electiond-channel.c), which reads network input. */
#include <glib.h>

#include "electiond-channel.h"
#include "electiond-keyring.h"
#include "electiond-seal.h"
#include "electiond-util.h"
#include "fuzz.h"

static const char key[] = "fuzz-channel-key-0123456789";

/* Byte 0 odd: re-sign the rest with the right key first, so mutations reach the field checks.
 * Bit 1 set: the codec has Encrypt=yes; with bit 0 the (re-signed) rest is sealed first, so that
 * mutations pass the envelope too, without it the rest is taken as an envelope as is. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static ChannelCodec *c = NULL, *sealed = NULL;
        static Keyring *ring = NULL;
        ChannelCodec *codec;
        ChannelPacket p;

        if (!c) {
                log_set_max_level(LOG_CRIT);
                c = channel_codec_new("fuzz", key, sizeof key - 1, 0x99, 1);
                sealed = channel_codec_new("fuzz", key, sizeof key - 1, 0x99, 1);
                ring = keyring_new_single(key, sizeof key - 1);
                keyring_set_encrypt(ring, true);
                g_assert(channel_codec_set_keyring(sealed, ring) == 0);
        }
        if (size < 1)
                return 0;

        g_autofree uint8_t *buf = g_memdup2(data + 1, size - 1);
        size--;
        if ((data[0] & 1) && size >= 32) {
                g_autoptr(GHmac) h = g_hmac_new(G_CHECKSUM_SHA256, (const guchar *) key, sizeof key - 1);
                gsize n = 32;
                g_hmac_update(h, buf, (gssize) (size - 32));
                g_hmac_get_digest(h, buf + size - 32, &n);
        }
        codec = data[0] & 2 ? sealed : c;
        if ((data[0] & 3) == 3 && size <= CHANNEL_SEALED_MAX - SEAL_OVERHEAD) {
                uint8_t *env = g_malloc(size + SEAL_OVERHEAD);
                size_t n;
                g_assert(seal_packet(ring, CHANNEL_SEALED_MAGIC, buf, size, env, size + SEAL_OVERHEAD, &n) == 0);
                g_free(buf);
                buf = env;
                size = n;
        }
        if (channel_decode(codec, buf, size, &p) == 0) {
                /* what decodes must be internally consistent (sealed: inside the codec's buffer) */
                if (codec == c)
                        g_assert(p.payload + p.payload_size <= buf + size);
                g_assert(p.payload_size <= CHANNEL_PAYLOAD_MAX);
                g_assert(p.payload_size <= size);
        }
        return 0;
}

void fuzz_seeds(GPtrArray *out) {
        g_autoptr(ChannelCodec) c = channel_codec_new("fuzz", key, sizeof key - 1, 0x42, 3);
        const char *payloads[] = { "", "12345678", "a longer payload for the lease or forward path" };

        for (size_t i = 0; i < G_N_ELEMENTS(payloads); i++) {
                g_autoptr(GByteArray) pkt = NULL;
                GByteArray *seed = g_byte_array_new();
                uint8_t mode = i == 2 ? 3 : 1;
                g_assert(channel_encode(c, (uint8_t) (i + 1), payloads[i], strlen(payloads[i]), &pkt) == 0);
                g_byte_array_append(seed, &mode, 1);
                g_byte_array_append(seed, pkt->data, pkt->len);
                g_ptr_array_add(out, g_byte_array_free_to_bytes(seed));
        }
}
