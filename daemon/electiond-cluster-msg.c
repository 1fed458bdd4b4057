/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "electiond-bytes.h"
#include "electiond-cluster-msg.h"

/* The rest of the input as a string (as g_strndup(): it ends at a NUL inside). */
static char *read_rest_str(ByteReader *r) {
        const uint8_t *p;
        size_t n = r->left;

        (void) bytes_read(r, n, &p);
        return g_strndup((const char *) p, n);
}

GByteArray *cluster_msg_lease_req_encode(const ClusterLeaseReq *m) {
        GByteArray *b = g_byte_array_new();

        bytes_put_u64(b, m->seq);
        bytes_put_u64(b, m->applied);
        bytes_put_u64(b, m->fingerprint);
        bytes_put_u64(b, m->without_usec);
        g_byte_array_append(b, (const uint8_t *) m->name, (guint) strlen(m->name));
        return b;
}

int cluster_msg_lease_req_decode(const void *data, size_t size, ClusterLeaseReq *ret) {
        ByteReader r = { data, size };

        if (size < 33 || size > 32 + CLUSTER_MSG_NAME_MAX)
                return -EBADMSG;
        *ret = (ClusterLeaseReq) {};
        (void) bytes_read_u64(&r, &ret->seq);
        (void) bytes_read_u64(&r, &ret->applied);
        (void) bytes_read_u64(&r, &ret->fingerprint);
        (void) bytes_read_u64(&r, &ret->without_usec);
        ret->name = read_rest_str(&r);
        return 0;
}

GByteArray *cluster_msg_lease_ack_encode(const ClusterLeaseAck *m) {
        GByteArray *b = g_byte_array_new();

        bytes_put_u64(b, m->seq);
        bytes_put_u64(b, m->epoch);
        return b;
}

int cluster_msg_lease_ack_decode(const void *data, size_t size, ClusterLeaseAck *ret) {
        ByteReader r = { data, size };

        if (size != 16)
                return -EBADMSG;
        (void) bytes_read_u64(&r, &ret->seq);
        (void) bytes_read_u64(&r, &ret->epoch);
        return 0;
}

GByteArray *cluster_msg_expired_q_encode(const ClusterExpiredQ *m) {
        GByteArray *b = g_byte_array_new();

        bytes_put_u64(b, m->target);
        bytes_put_u64(b, m->ask_id);
        return b;
}

int cluster_msg_expired_q_decode(const void *data, size_t size, ClusterExpiredQ *ret) {
        ByteReader r = { data, size };

        if (size != 16)
                return -EBADMSG;
        (void) bytes_read_u64(&r, &ret->target);
        (void) bytes_read_u64(&r, &ret->ask_id);
        return 0;
}

GByteArray *cluster_msg_expired_a_encode(const ClusterExpiredA *m) {
        GByteArray *b = g_byte_array_new();

        bytes_put_u64(b, m->target);
        bytes_put_u64(b, m->ask_id);
        bytes_put_u8(b, m->yes);
        return b;
}

int cluster_msg_expired_a_decode(const void *data, size_t size, ClusterExpiredA *ret) {
        ByteReader r = { data, size };

        if (size != 17)
                return -EBADMSG;
        (void) bytes_read_u64(&r, &ret->target);
        (void) bytes_read_u64(&r, &ret->ask_id);
        (void) bytes_read_u8(&r, &ret->yes);
        return 0;
}

GByteArray *cluster_msg_applied_encode(const ClusterApplied *m) {
        GByteArray *b = g_byte_array_new();
        g_assert(m->n_attested <= UINT16_MAX);
        bytes_put_u64(b, m->confirmed_index);
        bytes_put_u64(b, m->attest_index);
        bytes_put_u16(b, (uint16_t) m->n_attested);
        for (size_t i = 0; i < m->n_attested; i++)
                bytes_put_u64(b, m->attested[i]);
        return b;
}

int cluster_msg_applied_decode(const void *data, size_t size, ClusterApplied *ret) {
        ByteReader r = { data, size };
        const uint8_t *p;
        uint16_t n;

        if (size < 18)
                return -EBADMSG;
        n = bytes_get_u16((const uint8_t *) data + 16);
        if (size != 18 + (size_t) n * 8)
                return -EBADMSG;
        *ret = (ClusterApplied) {};
        (void) bytes_read_u64(&r, &ret->confirmed_index);
        (void) bytes_read_u64(&r, &ret->attest_index);
        (void) bytes_read(&r, 2, &p);
        ret->n_attested = n;
        ret->attested = g_new(uint64_t, MAX(n, 1));
        for (uint16_t i = 0; i < n; i++)
                (void) bytes_read_u64(&r, &ret->attested[i]);
        return 0;
}

void cluster_applied_done(ClusterApplied *m) {
        g_clear_pointer(&m->attested, g_free);
        m->n_attested = 0;
}

GByteArray *cluster_msg_join_encode(const ClusterJoin *m) {
        GByteArray *b = g_byte_array_new();

        bytes_put_u64(b, m->raft_id);
        g_byte_array_append(b, (const uint8_t *) m->address, (guint) strlen(m->address));
        return b;
}

int cluster_msg_join_decode(const void *data, size_t size, ClusterJoin *ret) {
        ByteReader r = { data, size };

        if (size < 9 || size > 8 + CLUSTER_MSG_ADDRESS_MAX)
                return -EBADMSG;
        *ret = (ClusterJoin) {};
        (void) bytes_read_u64(&r, &ret->raft_id);
        ret->address = read_rest_str(&r);
        return 0;
}

