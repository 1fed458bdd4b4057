/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <inttypes.h>
#include <sys/socket.h>

#include "electiond-membership.h"
#include "electiond-util.h"

static bool family_valid(uint8_t f) {
        return f == AF_INET || f == AF_INET6;
}

static bool is_suspect_or_dead(uint8_t type) {
        return type == GOSSIP_SUSPECT || type == GOSSIP_DEAD;
}

typedef struct Probe {
        char target[MEMBER_NAME_MAX + 1];
        uint32_t seq;
        uint64_t sent_usec;             /* lease anchor if answered */
        uint64_t direct_deadline_usec;
        uint64_t final_deadline_usec;
        unsigned n_requests;            /* ping-reqs sent */
        unsigned n_nacks;               /* relays that answered "could not reach it" */
        bool indirect_sent;
} Probe;

typedef struct Relay {
        uint32_t my_seq;
        uint32_t their_seq;
        char requester[MEMBER_NAME_MAX + 1];
        MemberAddress requester_address;
        uint64_t deadline_usec;
} Relay;

typedef struct Broadcast {
        GossipMessage msg;
        uint64_t silent_since_usec;     /* SUSPECT/DEAD: silent_usec is filled in when sent */
        unsigned transmits;
        uint64_t order;                 /* higher = newer */
} Broadcast;

struct Membership {
        MembershipParams p;
        GHashTable *members;            /* name → Member* (owned) */
        Member *self;
        bool leaving;

        GPtrArray *probe_order;         /* names (owned), shuffled */
        size_t probe_index;
        GArray *probes;                 /* Probe */
        GArray *relays;                 /* Relay */
        GPtrArray *broadcasts;          /* Broadcast* (owned) */
        uint64_t broadcast_counter;
        uint32_t next_seq;

        uint64_t next_probe_usec;
        uint64_t quiet_until_usec;      /* after a stall: suspect nobody before this */
        unsigned awareness;

        GRand *rand;
        MembershipEventFunc callback;
        void *userdata;
        MembershipStats stats;
};

static const char *const member_state_table[_MEMBER_STATE_MAX] = {
        [MEMBER_ALIVE] = "alive",
        [MEMBER_SUSPECT] = "suspect",
        [MEMBER_DEAD] = "dead",
        [MEMBER_LEFT] = "left",
};

const char *member_state_to_string(MemberState s) {
        return s < _MEMBER_STATE_MAX ? member_state_table[s] : NULL;
}

static const char *const membership_event_table[_MEMBERSHIP_EVENT_MAX] = {
        [MEMBERSHIP_EVENT_JOINED] = "joined",
        [MEMBERSHIP_EVENT_ALIVE] = "alive",
        [MEMBERSHIP_EVENT_SUSPECT] = "suspect",
        [MEMBERSHIP_EVENT_DEAD] = "dead",
        [MEMBERSHIP_EVENT_LEFT] = "left",
        [MEMBERSHIP_EVENT_UPDATED] = "updated",
};

const char *membership_event_to_string(MembershipEvent e) {
        return e < _MEMBERSHIP_EVENT_MAX ? membership_event_table[e] : NULL;
}

void membership_params_init_defaults(MembershipParams *p) {
        *p = (MembershipParams) {
                .probe_interval_usec = 100 * USEC_PER_MSEC,
                .probe_timeout_usec = 40 * USEC_PER_MSEC,
                .node_timeout_usec = 500 * USEC_PER_MSEC,
                .indirect_checks = 3,
                .suspicion_mult = 4,
                .suspicion_max_mult = 3,
                .watched_suspicion_usec = 200 * USEC_PER_MSEC,
                .watch_all_max = 7,
                .retransmit_mult = 4,
                .awareness_max = 8,
                .max_packet_payload = 1200,
        };
}

/* Layout shared with electiond-wire.c: type u8, body length u16, body. */
static size_t str_size(const char *s) {
        return 1 + strlen(s);
}

size_t gossip_message_wire_size(const GossipMessage *msg) {
        size_t body = 0;

        switch (msg->type) {
        case GOSSIP_PING:
                body = 4 + str_size(msg->name);
                break;
        case GOSSIP_PING_REQ:
                body = 4 + str_size(msg->name) + 1 + 19 * (size_t) msg->n_addresses;
                break;
        case GOSSIP_ACK:
        case GOSSIP_NACK:
                body = 4;
                break;
        case GOSSIP_ALIVE:
                body = str_size(msg->name) + 8 + 8 + 1 + 19 * (size_t) msg->n_addresses + 2 + msg->tags_size;
                break;
        case GOSSIP_SUSPECT:
        case GOSSIP_DEAD:
                body = str_size(msg->name) + 8 + str_size(msg->from) + 8;
                break;
        case GOSSIP_LEFT:
                body = str_size(msg->name) + 8;
                break;
        case GOSSIP_USER:
                body = 4 + 2 + msg->tags_size;
                break;
        }
        return 3 + body;
}

static bool name_valid(const char *s, size_t size, bool allow_empty) {
        if (!memchr(s, 0, size))
                return false;
        if (allow_empty && s[0] == 0)
                return true;
        return election_string_valid(s);
}

bool gossip_message_valid(const GossipMessage *msg) {
        if (!msg)
                return false;
        if (msg->n_addresses > MEMBER_ADDRESSES_MAX || msg->tags_size > MEMBER_TAGS_MAX)
                return false;
        for (size_t i = 0; i < msg->n_addresses; i++)
                if (!family_valid(msg->addresses[i].family))
                        return false;

        switch (msg->type) {
        case GOSSIP_PING:
                return name_valid(msg->name, sizeof msg->name, true);
        case GOSSIP_PING_REQ:
        case GOSSIP_ALIVE:
        case GOSSIP_LEFT:
                return name_valid(msg->name, sizeof msg->name, false);
        case GOSSIP_ACK:
        case GOSSIP_NACK:
        case GOSSIP_USER:
                return true;
        case GOSSIP_SUSPECT:
        case GOSSIP_DEAD:
                return name_valid(msg->name, sizeof msg->name, false) &&
                        name_valid(msg->from, sizeof msg->from, false);
        default:
                return false;
        }
}

void membership_actions_clear(MembershipActions *a) {
        if (!a)
                return;
        for (size_t i = 0; i < a->n; i++)
                free(a->items[i].messages);
        free(a->items);
        *a = (MembershipActions) {};
}

static MembershipAction *action_new(MembershipActions *a, const char *to, const MemberAddress *addresses, size_t n_addresses) {
        MembershipAction *act;

        if (a->n >= a->allocated) {
                size_t k = MAX(a->allocated * 2, (size_t) 8);
                MembershipAction *p = realloc(a->items, k * sizeof *p);
                if (!p)
                        return NULL;
                a->items = p;
                a->allocated = k;
        }
        act = &a->items[a->n++];
        *act = (MembershipAction) {};
        g_strlcpy(act->to_name, to ?: "", sizeof act->to_name);
        act->n_addresses = MIN(n_addresses, (size_t) MEMBER_ADDRESSES_MAX);
        memcpy(act->addresses, addresses, act->n_addresses * sizeof *addresses);
        return act;
}

static int action_add(MembershipAction *act, const GossipMessage *msg) {
        GossipMessage *p = realloc(act->messages, (act->n_messages + 1) * sizeof *p);
        if (!p)
                return -ENOMEM;
        act->messages = p;
        act->messages[act->n_messages++] = *msg;
        return 0;
}

static size_t action_size(const MembershipAction *act) {
        size_t sz = 0;
        for (size_t i = 0; i < act->n_messages; i++)
                sz += gossip_message_wire_size(&act->messages[i]);
        return sz;
}

static Member *member_lookup(const Membership *m, const char *name) {
        return g_hash_table_lookup(m->members, name);
}

static bool member_reachable(const Member *mem) {
        return mem->state == MEMBER_ALIVE || mem->state == MEMBER_SUSPECT;
}

static bool is_watched(const Membership *m, const Member *mem) {
        return mem->watched || membership_count_alive(m) <= m->p.watch_all_max;
}

static void emit(Membership *m, MembershipEvent e, const Member *mem) {
        log_debug("membership %s: %s is %s (incarnation %" PRIu64 ")",
                  m->self->name, mem->name, membership_event_to_string(e), mem->incarnation);
        if (m->callback)
                m->callback(m, e, mem, m->userdata);
}

static void alive_message(const Member *mem, GossipMessage *ret) {
        *ret = (GossipMessage) { .type = GOSSIP_ALIVE, .node_id = mem->node_id, .incarnation = mem->incarnation };
        g_strlcpy(ret->name, mem->name, sizeof ret->name);
        ret->n_addresses = (uint8_t) mem->n_addresses;
        memcpy(ret->addresses, mem->addresses, mem->n_addresses * sizeof mem->addresses[0]);
        ret->tags_size = (uint16_t) mem->tags_size;
        memcpy(ret->tags, mem->tags, mem->tags_size);
}

/* Natural logarithm for x >= 1, so that we need not link libm for two timeouts. */
static double ln(double x) {
        const double ln2 = 0.69314718055994530942;
        double acc = 0, y, y2, term, sum = 0;

        if (x <= 0)
                return 0;
        while (x > 2) {
                x /= 2;
                acc += ln2;
        }
        while (x < 1) {
                x *= 2;
                acc -= ln2;
        }
        /* ln x = 2 atanh((x-1)/(x+1)), converges fast for x in [1, 2] */
        y = (x - 1) / (x + 1);
        y2 = y * y;
        term = y;
        for (unsigned k = 1; k < 40; k += 2) {
                sum += term / k;
                term *= y2;
        }
        return acc + 2 * sum;
}

static unsigned log10_ceil(size_t n) {
        unsigned r = 0;
        for (size_t x = 1; x < n; x *= 10)
                r++;
        return MAX(r, 1u);
}

static unsigned retransmit_limit(const Membership *m) {
        return m->p.retransmit_mult * log10_ceil(membership_count_alive(m) + 1);
}

/* A newer update about a member supersedes whatever was queued about it. */
static void queue_broadcast(Membership *m, const GossipMessage *msg, uint64_t silent_since) {
        for (guint i = 0; i < m->broadcasts->len;) {
                Broadcast *b = m->broadcasts->pdata[i];
                if (streq_ptr(b->msg.name, msg->name))
                        g_ptr_array_remove_index_fast(m->broadcasts, i);
                else
                        i++;
        }
        Broadcast *b = g_new0(Broadcast, 1);
        b->msg = *msg;
        b->silent_since_usec = silent_since;
        b->order = ++m->broadcast_counter;
        g_ptr_array_add(m->broadcasts, b);
}

static void queue_self_alive(Membership *m) {
        GossipMessage msg;
        alive_message(m->self, &msg);
        queue_broadcast(m, &msg, 0);
}

static gint broadcast_compare(gconstpointer a, gconstpointer b) {
        const Broadcast *x = *(Broadcast *const *) a, *y = *(Broadcast *const *) b;
        if (x->transmits != y->transmits)
                return x->transmits < y->transmits ? -1 : 1;
        return x->order > y->order ? -1 : (x->order < y->order ? 1 : 0);
}

static void fill_silent(GossipMessage *msg, uint64_t silent_since, uint64_t now) {
        if (is_suspect_or_dead(msg->type))
                msg->silent_usec = now > silent_since ? now - silent_since : 0;
}

/* ALIVE(self), the primary messages, what we think of the recipient (so that it can refute at
 * once), then queued updates, fewest transmissions and newest first, within the byte budget. */
static int send_packet(Membership *m, MembershipActions *actions, const char *to,
                       const MemberAddress *addresses, size_t n_addresses,
                       const GossipMessage *primary, size_t n_primary, uint64_t now) {
        MembershipAction *act;
        GossipMessage msg;
        Member *rcpt;
        unsigned limit;
        int r;

        if (n_addresses == 0)
                return 0;
        act = action_new(actions, to, addresses, n_addresses);
        if (!act)
                return -ENOMEM;

        alive_message(m->self, &msg);
        r = action_add(act, &msg);
        if (r < 0)
                return r;

        /* Before the primary messages, so that the recipient refutes first and its ack already
         * carries the new incarnation. */
        rcpt = to && to[0] ? member_lookup(m, to) : NULL;
        if (rcpt && (rcpt->state == MEMBER_SUSPECT || rcpt->state == MEMBER_DEAD)) {
                msg = (GossipMessage) {
                        .type = rcpt->state == MEMBER_SUSPECT ? GOSSIP_SUSPECT : GOSSIP_DEAD,
                        .incarnation = rcpt->incarnation,
                };
                g_strlcpy(msg.name, rcpt->name, sizeof msg.name);
                g_strlcpy(msg.from, m->self->name, sizeof msg.from);
                fill_silent(&msg, rcpt->last_contact_usec, now);
                r = action_add(act, &msg);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < n_primary; i++) {
                r = action_add(act, &primary[i]);
                if (r < 0)
                        return r;
        }

        size_t used = action_size(act);
        limit = retransmit_limit(m);
        g_ptr_array_sort(m->broadcasts, broadcast_compare);
        for (guint i = 0; i < m->broadcasts->len;) {
                Broadcast *b = m->broadcasts->pdata[i];
                size_t sz = gossip_message_wire_size(&b->msg);

                if (used + sz > m->p.max_packet_payload) {
                        i++;
                        continue;
                }
                msg = b->msg;
                fill_silent(&msg, b->silent_since_usec, now);
                r = action_add(act, &msg);
                if (r < 0)
                        return r;
                used += sz;
                if (++b->transmits >= limit)
                        g_ptr_array_remove_index(m->broadcasts, i);
                else
                        i++;
        }
        return 0;
}

static int send_to_member(Membership *m, MembershipActions *actions, const Member *mem,
                          const GossipMessage *primary, size_t n_primary, uint64_t now) {
        return send_packet(m, actions, mem->name, mem->addresses, mem->n_addresses, primary, n_primary, now);
}

static void suspector_add(Member *mem, const char *from, uint64_t silent_since) {
        for (size_t i = 0; i < mem->n_suspectors; i++)
                if (streq_ptr(mem->suspectors[i].name, from)) {
                        /* keep the most recent contact anyone reported: the conservative one */
                        mem->suspectors[i].silent_since_usec = MAX(mem->suspectors[i].silent_since_usec, silent_since);
                        return;
                }
        if (mem->n_suspectors >= ELEMENTSOF(mem->suspectors))
                return;
        g_strlcpy(mem->suspectors[mem->n_suspectors].name, from, sizeof mem->suspectors[0].name);
        mem->suspectors[mem->n_suspectors].silent_since_usec = silent_since;
        mem->n_suspectors++;
}

static void probes_drop_target(Membership *m, const char *name) {
        for (guint i = 0; i < m->probes->len;) {
                if (streq_ptr(g_array_index(m->probes, Probe, i).target, name))
                        g_array_remove_index_fast(m->probes, i);
                else
                        i++;
        }
}

static Member *member_add(Membership *m, const GossipMessage *alive, const MemberAddress *from_address, uint64_t now) {
        Member *mem = g_new0(Member, 1);

        g_strlcpy(mem->name, alive->name, sizeof mem->name);
        mem->node_id = alive->node_id;
        mem->incarnation = alive->incarnation;
        mem->state = MEMBER_ALIVE;
        mem->n_addresses = alive->n_addresses;
        memcpy(mem->addresses, alive->addresses, alive->n_addresses * sizeof alive->addresses[0]);
        if (mem->n_addresses == 0 && from_address) {
                mem->addresses[0] = *from_address;
                mem->n_addresses = 1;
        }
        mem->tags_size = alive->tags_size;
        memcpy(mem->tags, alive->tags, alive->tags_size);
        mem->last_contact_usec = now;
        mem->state_change_usec = now;
        g_hash_table_insert(m->members, mem->name, mem);

        /* Put it at a random place among the members still to be probed this round. */
        size_t left = m->probe_order->len - MIN(m->probe_index, (size_t) m->probe_order->len);
        size_t pos = m->probe_index + (size_t) g_rand_int_range(m->rand, 0, (gint32) left + 1);
        g_ptr_array_insert(m->probe_order, (gint) pos, g_strdup(mem->name));
        return mem;
}

static void self_refute(Membership *m, uint64_t incarnation) {
        /* an older rumour was already outbid by our current incarnation */
        if (m->leaving || incarnation < m->self->incarnation)
                return;
        m->self->incarnation = MAX(m->self->incarnation, incarnation) + 1;
        m->stats.suspicions_refuted++;
        m->awareness = MIN(m->awareness + 1, m->p.awareness_max);
        queue_self_alive(m);
}

static void apply_alive(Membership *m, const GossipMessage *msg, bool direct, const MemberAddress *from_address, uint64_t now) {
        Member *mem;

        if (streq_ptr(msg->name, m->self->name)) {
                if (msg->node_id != m->self->node_id) {
                        m->stats.name_conflicts++;
                        return;
                }
                /* Our own older life is still being gossiped: outbid it. */
                if (msg->incarnation > m->self->incarnation)
                        self_refute(m, msg->incarnation);
                return;
        }

        mem = member_lookup(m, msg->name);
        if (!mem) {
                if (g_hash_table_size(m->members) >= MEMBERSHIP_MEMBERS_MAX) {
                        m->stats.members_refused++;
                        return;
                }
                mem = member_add(m, msg, direct ? from_address : NULL, now);
                queue_broadcast(m, msg, 0);
                emit(m, MEMBERSHIP_EVENT_JOINED, mem);
                return;
        }

        if (mem->node_id != msg->node_id) {
                /* Same name, another node: only a replacement of a gone member is accepted. */
                if (member_reachable(mem)) {
                        m->stats.name_conflicts++;
                        return;
                }
                mem->node_id = msg->node_id;
                mem->incarnation = msg->incarnation;
        } else if (msg->incarnation <= mem->incarnation) {
                if (direct)
                        mem->last_contact_usec = MAX(mem->last_contact_usec, now);
                return;
        }

        MemberState old = mem->state;
        bool changed = mem->n_addresses != msg->n_addresses ||
                memcmp(mem->addresses, msg->addresses, msg->n_addresses * sizeof msg->addresses[0]) != 0 ||
                mem->tags_size != msg->tags_size ||
                memcmp(mem->tags, msg->tags, msg->tags_size) != 0;

        mem->incarnation = msg->incarnation;
        if (msg->n_addresses > 0) {
                mem->n_addresses = msg->n_addresses;
                memcpy(mem->addresses, msg->addresses, msg->n_addresses * sizeof msg->addresses[0]);
        }
        mem->tags_size = msg->tags_size;
        memcpy(mem->tags, msg->tags, msg->tags_size);
        mem->state = MEMBER_ALIVE;
        mem->n_suspectors = 0;
        mem->dead_reported = false;
        mem->last_contact_usec = MAX(mem->last_contact_usec, now);
        if (old != MEMBER_ALIVE)
                mem->state_change_usec = now;
        queue_broadcast(m, msg, 0);

        if (old != MEMBER_ALIVE)
                emit(m, MEMBERSHIP_EVENT_ALIVE, mem);
        else if (changed)
                emit(m, MEMBERSHIP_EVENT_UPDATED, mem);
}

static void suspect_member(Membership *m, Member *mem, uint64_t incarnation, const char *from,
                           uint64_t silent_since, uint64_t now) {
        GossipMessage msg;

        if (mem->state == MEMBER_SUSPECT) {
                suspector_add(mem, from, silent_since);
                mem->incarnation = MAX(mem->incarnation, incarnation);
                return;
        }
        if (mem->state != MEMBER_ALIVE)
                return;

        mem->state = MEMBER_SUSPECT;
        mem->incarnation = incarnation;
        mem->suspected_usec = now;
        mem->state_change_usec = now;
        mem->n_suspectors = 0;
        mem->dead_reported = false;
        suspector_add(mem, from, silent_since);

        msg = (GossipMessage) { .type = GOSSIP_SUSPECT, .incarnation = incarnation };
        g_strlcpy(msg.name, mem->name, sizeof msg.name);
        g_strlcpy(msg.from, from, sizeof msg.from);
        queue_broadcast(m, &msg, silent_since);
        emit(m, MEMBERSHIP_EVENT_SUSPECT, mem);
}

static void declare_dead(Membership *m, Member *mem, uint64_t incarnation, const char *from,
                         uint64_t silent_since, uint64_t now) {
        GossipMessage msg;

        suspector_add(mem, from, silent_since);
        if (!member_reachable(mem))
                return;

        mem->state = MEMBER_DEAD;
        mem->incarnation = MAX(mem->incarnation, incarnation);
        mem->state_change_usec = now;
        probes_drop_target(m, mem->name);

        msg = (GossipMessage) { .type = GOSSIP_DEAD, .incarnation = mem->incarnation };
        g_strlcpy(msg.name, mem->name, sizeof msg.name);
        g_strlcpy(msg.from, from, sizeof msg.from);
        queue_broadcast(m, &msg, silent_since);
        emit(m, MEMBERSHIP_EVENT_DEAD, mem);
}

static uint64_t silent_since_from(uint64_t silent_usec, uint64_t now) {
        /* Transit delay makes this later than the truth: the safe direction. */
        return silent_usec < now ? now - silent_usec : 0;
}

static void apply_suspect_or_dead(Membership *m, const GossipMessage *msg, uint64_t now) {
        Member *mem;

        if (streq_ptr(msg->name, m->self->name)) {
                self_refute(m, msg->incarnation);
                return;
        }
        mem = member_lookup(m, msg->name);
        if (!mem || msg->incarnation < mem->incarnation)
                return;

        uint64_t since = silent_since_from(msg->silent_usec, now);
        if (msg->type == GOSSIP_SUSPECT) {
                if (!member_reachable(mem))
                        return;
                suspect_member(m, mem, msg->incarnation, msg->from, since, now);
        } else {
                if (mem->state == MEMBER_LEFT)
                        return;
                /* Our own view decides: we may have heard it more recently than the reporter. */
                if (mem->state != MEMBER_DEAD && now < mem->last_contact_usec + m->p.node_timeout_usec) {
                        suspect_member(m, mem, msg->incarnation, msg->from, since, now);
                        mem->dead_reported = true;
                        return;
                }
                declare_dead(m, mem, msg->incarnation, msg->from, since, now);
        }
}

static void apply_left(Membership *m, const GossipMessage *msg, uint64_t now) {
        Member *mem;

        if (streq_ptr(msg->name, m->self->name)) {
                if (!m->leaving)
                        self_refute(m, msg->incarnation);
                return;
        }
        mem = member_lookup(m, msg->name);
        if (!mem || msg->incarnation < mem->incarnation || mem->state == MEMBER_LEFT)
                return;

        mem->state = MEMBER_LEFT;
        mem->incarnation = msg->incarnation;
        mem->state_change_usec = now;
        probes_drop_target(m, mem->name);
        queue_broadcast(m, msg, 0);
        emit(m, MEMBERSHIP_EVENT_LEFT, mem);
}

static int probe_acked(Membership *m, guint index, uint64_t now) {
        Probe p = g_array_index(m->probes, Probe, index);
        Member *mem;

        g_array_remove_index_fast(m->probes, index);
        if (m->awareness > 0)
                m->awareness--;
        mem = member_lookup(m, p.target);
        if (!mem)
                return 0;
        mem->last_contact_usec = MAX(mem->last_contact_usec, p.sent_usec);
        return 0;
}

static int handle_ack(Membership *m, const GossipMessage *msg, uint64_t now, MembershipActions *actions) {
        for (guint i = 0; i < m->relays->len; i++) {
                Relay *rl = &g_array_index(m->relays, Relay, i);
                if (rl->my_seq != msg->seq)
                        continue;

                GossipMessage ack = { .type = msg->type, .seq = rl->their_seq };
                const Member *req = member_lookup(m, rl->requester);
                int r;

                if (req)
                        r = send_to_member(m, actions, req, &ack, 1, now);
                else
                        r = send_packet(m, actions, rl->requester, &rl->requester_address, 1, &ack, 1, now);
                g_array_remove_index_fast(m->relays, i);
                return r;
        }

        for (guint i = 0; i < m->probes->len; i++) {
                Probe *p = &g_array_index(m->probes, Probe, i);
                if (p->seq != msg->seq)
                        continue;
                if (msg->type == GOSSIP_NACK) {
                        p->n_nacks++;
                        return 0;
                }
                return probe_acked(m, i, now);
        }
        return 0; /* late or unknown: the contact was already noted from ALIVE(sender) */
}

static int handle_ping_req(Membership *m, const GossipMessage *msg, const Member *requester,
                           const MemberAddress *from_address, uint64_t now, MembershipActions *actions) {
        const Member *target = member_lookup(m, msg->name);
        const MemberAddress *addrs = msg->addresses;
        size_t n = msg->n_addresses;
        Relay rl = {
                .my_seq = m->next_seq++,
                .their_seq = msg->seq,
                .deadline_usec = now + m->p.probe_timeout_usec,
        };
        GossipMessage ping = { .type = GOSSIP_PING, .seq = rl.my_seq };

        if (streq_ptr(msg->name, m->self->name))
                return 0;
        if (target && target->n_addresses > 0) {
                addrs = target->addresses;
                n = target->n_addresses;
        }
        if (n == 0)
                return 0;
        g_strlcpy(rl.requester, requester->name, sizeof rl.requester);
        rl.requester_address = from_address ? *from_address : requester->addresses[0];
        g_array_append_val(m->relays, rl);
        g_strlcpy(ping.name, msg->name, sizeof ping.name);
        return send_packet(m, actions, msg->name, addrs, n, &ping, 1, now);
}

int membership_receive(Membership *m, const GossipMessage *messages, size_t n_messages,
                       const MemberAddress *from_address, uint64_t now, MembershipActions *actions) {
        const GossipMessage *hello;
        Member *sender;
        int r;

        if (!m || !messages || n_messages == 0 || !actions)
                return -EINVAL;
        for (size_t i = 0; i < n_messages; i++)
                if (!gossip_message_valid(&messages[i]))
                        return -EBADMSG;
        hello = &messages[0];
        if (hello->type != GOSSIP_ALIVE)
                return -EBADMSG;
        if (streq_ptr(hello->name, m->self->name)) {
                /* Our own multicast looped back, or a name conflict. */
                if (hello->node_id != m->self->node_id)
                        m->stats.name_conflicts++;
                return 0;
        }
        if (m->leaving)
                return 0;

        apply_alive(m, hello, true, from_address, now);
        sender = member_lookup(m, hello->name);
        if (!sender || sender->node_id != hello->node_id)
                return 0; /* conflicting identity: ignore the rest */

        bool replied = false, stale_about_us = false;
        for (size_t i = 1; i < n_messages; i++) {
                const GossipMessage *msg = &messages[i];

                if ((msg->type == GOSSIP_SUSPECT || msg->type == GOSSIP_DEAD || msg->type == GOSSIP_LEFT) &&
                    streq_ptr(msg->name, m->self->name) && msg->incarnation < m->self->incarnation)
                        stale_about_us = true;

                switch (msg->type) {
                case GOSSIP_PING:
                        if (msg->name[0] && !streq_ptr(msg->name, m->self->name))
                                break; /* meant for a previous owner of this address */
                        replied = true;
                        GossipMessage ack = { .type = GOSSIP_ACK, .seq = msg->seq };
                        if (from_address)
                                r = send_packet(m, actions, sender->name, from_address, 1, &ack, 1, now);
                        else
                                r = send_to_member(m, actions, sender, &ack, 1, now);
                        if (r < 0)
                                return r;
                        break;
                case GOSSIP_PING_REQ:
                        r = handle_ping_req(m, msg, sender, from_address, now, actions);
                        if (r < 0)
                                return r;
                        break;
                case GOSSIP_ACK:
                case GOSSIP_NACK:
                        r = handle_ack(m, msg, now, actions);
                        if (r < 0)
                                return r;
                        break;
                case GOSSIP_ALIVE:
                        apply_alive(m, msg, false, NULL, now);
                        break;
                case GOSSIP_SUSPECT:
                case GOSSIP_DEAD:
                        apply_suspect_or_dead(m, msg, now);
                        break;
                case GOSSIP_LEFT:
                        apply_left(m, msg, now);
                        break;
                }
        }

        /* The sender still spreads a rumour about us that we already outbid: our hello carries
         * the current incarnation, so send it one (at most once per probe interval). */
        if (stale_about_us && !replied && now >= sender->last_notice_usec + m->p.probe_interval_usec) {
                sender->last_notice_usec = now;
                r = send_to_member(m, actions, sender, NULL, 0, now);
                if (r < 0)
                        return r;
        }
        return 0;
}

static Probe *probe_find(Membership *m, const char *target) {
        for (guint i = 0; i < m->probes->len; i++) {
                Probe *p = &g_array_index(m->probes, Probe, i);
                if (streq_ptr(p->target, target))
                        return p;
        }
        return NULL;
}

static int probe_start(Membership *m, Member *mem, uint64_t now, MembershipActions *actions) {
        uint64_t scale = 1 + m->awareness;
        Probe p = {
                .seq = m->next_seq++,
                .sent_usec = now,
                .direct_deadline_usec = now + m->p.probe_timeout_usec * scale,
                .final_deadline_usec = now + m->p.probe_interval_usec * scale,
        };
        GossipMessage ping = { .type = GOSSIP_PING, .seq = p.seq };

        if (probe_find(m, mem->name))
                return 0;
        g_strlcpy(p.target, mem->name, sizeof p.target);
        g_strlcpy(ping.name, mem->name, sizeof ping.name);
        g_array_append_val(m->probes, p);
        m->stats.probes_sent++;
        return send_to_member(m, actions, mem, &ping, 1, now);
}

static void shuffle_probe_order(Membership *m) {
        GHashTableIter it;
        Member *mem;

        g_ptr_array_set_size(m->probe_order, 0);
        g_hash_table_iter_init(&it, m->members);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *) &mem))
                if (!mem->is_self && member_reachable(mem))
                        g_ptr_array_add(m->probe_order, g_strdup(mem->name));
        for (guint i = m->probe_order->len; i > 1; i--) {
                guint j = (guint) g_rand_int_range(m->rand, 0, (gint32) i);
                gpointer t = m->probe_order->pdata[i - 1];
                m->probe_order->pdata[i - 1] = m->probe_order->pdata[j];
                m->probe_order->pdata[j] = t;
        }
        m->probe_index = 0;
}

static Member *next_probe_target(Membership *m) {
        for (unsigned pass = 0; pass < 2; pass++) {
                while (m->probe_index < m->probe_order->len) {
                        Member *mem = member_lookup(m, m->probe_order->pdata[m->probe_index++]);
                        if (mem && !mem->is_self && member_reachable(mem))
                                return mem;
                }
                shuffle_probe_order(m);
        }
        return NULL;
}

static int probe_round(Membership *m, uint64_t now, MembershipActions *actions) {
        GHashTableIter it;
        Member *mem;
        int r;

        mem = next_probe_target(m);
        if (mem) {
                r = probe_start(m, mem, now, actions);
                if (r < 0)
                        return r;
        }
        /* Watched members every interval; suspects too, so that they can refute in time. */
        g_hash_table_iter_init(&it, m->members);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *) &mem))
                if ((is_watched(m, mem) || mem->state == MEMBER_SUSPECT) && !mem->is_self && member_reachable(mem)) {
                        r = probe_start(m, mem, now, actions);
                        if (r < 0)
                                return r;
                }
        return 0;
}

static int probe_go_indirect(Membership *m, Probe *p, uint64_t now, MembershipActions *actions) {
        Member *target = member_lookup(m, p->target);
        g_autoptr(GPtrArray) helpers = g_ptr_array_new();
        GossipMessage ping = { .type = GOSSIP_PING, .seq = p->seq };
        GossipMessage req = { .type = GOSSIP_PING_REQ, .seq = p->seq };
        GHashTableIter it;
        Member *mem;
        int r;

        p->indirect_sent = true;
        if (!target)
                return 0;

        /* One more direct try (a single lost packet must not cost a suspicion)... */
        g_strlcpy(ping.name, target->name, sizeof ping.name);
        r = send_to_member(m, actions, target, &ping, 1, now);
        if (r < 0)
                return r;

        /* ...and k others ask on our behalf, which also tells apart our own network trouble. */
        g_hash_table_iter_init(&it, m->members);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *) &mem))
                if (!mem->is_self && mem != target && mem->state == MEMBER_ALIVE)
                        g_ptr_array_add(helpers, mem);
        g_strlcpy(req.name, target->name, sizeof req.name);
        req.n_addresses = (uint8_t) target->n_addresses;
        memcpy(req.addresses, target->addresses, target->n_addresses * sizeof target->addresses[0]);
        for (unsigned i = 0; i < m->p.indirect_checks && helpers->len > 0; i++) {
                guint j = (guint) g_rand_int_range(m->rand, 0, (gint32) helpers->len);
                r = send_to_member(m, actions, helpers->pdata[j], &req, 1, now);
                if (r < 0)
                        return r;
                g_ptr_array_remove_index_fast(helpers, j);
                p->n_requests++;
        }
        return 0;
}

static bool quiet(const Membership *m, uint64_t now) {
        return now < m->quiet_until_usec;
}

static void probe_failed(Membership *m, const Probe *p, uint64_t now) {
        Member *mem = member_lookup(m, p->target);

        if (!mem || !member_reachable(mem) || quiet(m, now))
                return;
        m->stats.probes_failed++;
        /* Relays that could not answer even with a nack point at our own network (Lifeguard). */
        if (p->n_nacks < p->n_requests)
                m->awareness = MIN(m->awareness + 1, m->p.awareness_max);
        suspect_member(m, mem, mem->incarnation, m->self->name, mem->last_contact_usec, now);
}

static uint64_t suspicion_timeout(const Membership *m, const Member *mem) {
        size_t n = membership_count_alive(m);
        double lg = MAX(1.0, ln((double) n) / ln(10.0));
        double s_min = (double) m->p.suspicion_mult * lg * (double) m->p.probe_interval_usec;
        double s_max = s_min * m->p.suspicion_max_mult;
        size_t k = MIN((size_t) m->p.indirect_checks, n > 2 ? n - 2 : 0);
        size_t c = 0;
        double s;

        for (size_t i = 0; i < mem->n_suspectors; i++)
                if (!streq_ptr(mem->suspectors[i].name, m->self->name))
                        c++;
        /* Watched members are probed every interval: NodeTimeout of silence already means many
         * failed direct and indirect probes in a row, so a short suspicion suffices. */
        if (is_watched(m, mem))
                return m->p.watched_suspicion_usec * (1 + m->awareness);
        if (k == 0 || c >= k)
                s = s_min;
        else
                s = MAX(s_min, s_max - (s_max - s_min) * ln((double) c + 1) / ln((double) k + 1));
        return (uint64_t) s * (1 + m->awareness);
}

static uint64_t dead_at(const Membership *m, const Member *mem) {
        uint64_t t = mem->last_contact_usec + m->p.node_timeout_usec;

        if (!mem->dead_reported)
                t = MAX(t, mem->suspected_usec + suspicion_timeout(m, mem));
        return MAX(t, m->quiet_until_usec);
}

/* We were not scheduled for a while: nobody could have reached us, so their silence during the
 * stall says nothing. Deadlines move later (the safe direction); lease anchors stay. */
static void handle_stall(Membership *m, uint64_t stall, uint64_t now) {
        GHashTableIter it;
        Member *mem;

        m->stats.stalls++;
        m->awareness = MIN(m->awareness + 1, m->p.awareness_max);
        m->quiet_until_usec = now + m->p.probe_interval_usec * (1 + m->awareness);
        log_debug("membership %s: stalled for %" PRIu64 " us", m->self->name, stall);

        g_hash_table_iter_init(&it, m->members);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *) &mem)) {
                if (mem->is_self)
                        continue;
                mem->last_contact_usec = MIN(mem->last_contact_usec + stall, now);
                if (mem->state == MEMBER_SUSPECT)
                        mem->suspected_usec = MIN(mem->suspected_usec + stall, now);
                for (size_t i = 0; i < mem->n_suspectors; i++)
                        mem->suspectors[i].silent_since_usec = MIN(mem->suspectors[i].silent_since_usec + stall, now);
        }
        for (guint i = 0; i < m->probes->len; i++) {
                Probe *p = &g_array_index(m->probes, Probe, i);
                p->direct_deadline_usec += stall;
                p->final_deadline_usec += stall;
        }
}

uint64_t membership_next_deadline(const Membership *m) {
        uint64_t t = m->next_probe_usec;
        GHashTableIter it;
        Member *mem;

        if (m->leaving)
                return UINT64_MAX;
        for (guint i = 0; i < m->probes->len; i++) {
                const Probe *p = &g_array_index(m->probes, Probe, i);
                t = MIN(t, p->indirect_sent ? p->final_deadline_usec : p->direct_deadline_usec);
        }
        for (guint i = 0; i < m->relays->len; i++)
                t = MIN(t, g_array_index(m->relays, Relay, i).deadline_usec);
        g_hash_table_iter_init(&it, m->members);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *) &mem))
                if (mem->state == MEMBER_SUSPECT)
                        t = MIN(t, dead_at(m, mem));
        return t;
}

uint64_t membership_next_probe_usec(const Membership *m) {
        return m && !m->leaving ? m->next_probe_usec : UINT64_MAX;
}

int membership_tick(Membership *m, uint64_t now, MembershipActions *actions) {
        uint64_t due;
        GHashTableIter it;
        Member *mem;
        int r;

        if (!m || !actions)
                return -EINVAL;
        if (m->leaving)
                return 0;

        due = membership_next_deadline(m);
        if (now > due && now - due > MAX(m->p.probe_timeout_usec / 2, 5 * USEC_PER_MSEC))
                handle_stall(m, now - due, now);

        for (guint i = 0; i < m->probes->len;) {
                Probe *p = &g_array_index(m->probes, Probe, i);

                if (now >= p->final_deadline_usec) {
                        Probe copy = *p;
                        g_array_remove_index_fast(m->probes, i);
                        probe_failed(m, &copy, now);
                        continue;
                }
                if (!p->indirect_sent && now >= p->direct_deadline_usec) {
                        r = probe_go_indirect(m, p, now, actions);
                        if (r < 0)
                                return r;
                }
                i++;
        }

        for (guint i = 0; i < m->relays->len;) {
                Relay rl = g_array_index(m->relays, Relay, i);
                if (now < rl.deadline_usec) {
                        i++;
                        continue;
                }
                g_array_remove_index_fast(m->relays, i);
                GossipMessage nack = { .type = GOSSIP_NACK, .seq = rl.their_seq };
                const Member *req = member_lookup(m, rl.requester);
                r = req ? send_to_member(m, actions, req, &nack, 1, now)
                        : send_packet(m, actions, rl.requester, &rl.requester_address, 1, &nack, 1, now);
                if (r < 0)
                        return r;
        }

        g_hash_table_iter_init(&it, m->members);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *) &mem))
                if (mem->state == MEMBER_SUSPECT && now >= dead_at(m, mem)) {
                        m->stats.declared_dead++;
                        declare_dead(m, mem, mem->incarnation, m->self->name, mem->last_contact_usec, now);
                }

        if (now >= m->next_probe_usec) {
                r = probe_round(m, now, actions);
                if (r < 0)
                        return r;
                m->next_probe_usec += m->p.probe_interval_usec;
                if (m->next_probe_usec <= now)
                        m->next_probe_usec = now + m->p.probe_interval_usec;
        }
        return 0;
}

int membership_ping_address(Membership *m, const MemberAddress *address, uint64_t now, MembershipActions *actions) {
        GossipMessage ping = { .type = GOSSIP_PING, .seq = m->next_seq++ };

        if (!m || !address || !actions)
                return -EINVAL;
        if (m->leaving)
                return 0;
        return send_packet(m, actions, "", address, 1, &ping, 1, now);
}

int membership_leave(Membership *m, uint64_t now, MembershipActions *actions) {
        GossipMessage msg = { .type = GOSSIP_LEFT };
        g_autoptr(GPtrArray) alive = g_ptr_array_new();
        GHashTableIter it;
        Member *mem;
        int r;

        if (!m || !actions)
                return -EINVAL;
        if (m->leaving)
                return 0;

        msg.incarnation = m->self->incarnation;
        g_strlcpy(msg.name, m->self->name, sizeof msg.name);
        g_hash_table_iter_init(&it, m->members);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *) &mem))
                if (!mem->is_self && member_reachable(mem))
                        g_ptr_array_add(alive, mem);
        for (unsigned i = 0; i < MAX(m->p.indirect_checks, 1u) && alive->len > 0; i++) {
                guint j = (guint) g_rand_int_range(m->rand, 0, (gint32) alive->len);
                r = send_to_member(m, actions, alive->pdata[j], &msg, 1, now);
                if (r < 0)
                        return r;
                g_ptr_array_remove_index_fast(alive, j);
        }
        m->leaving = true;
        m->self->state = MEMBER_LEFT;
        return 0;
}

int membership_update_self(Membership *m, const MemberAddress *addresses, size_t n_addresses,
                           const void *tags, size_t tags_size) {
        if (!m || n_addresses > MEMBER_ADDRESSES_MAX || tags_size > MEMBER_TAGS_MAX || (n_addresses > 0 && !addresses))
                return -EINVAL;
        m->self->n_addresses = n_addresses;
        if (n_addresses > 0)
                memcpy(m->self->addresses, addresses, n_addresses * sizeof addresses[0]);
        m->self->tags_size = tags_size;
        if (tags_size > 0)
                memcpy(m->self->tags, tags, tags_size);
        m->self->incarnation++;
        queue_self_alive(m);
        return 0;
}

int membership_set_watched(Membership *m, const char *name, bool watched) {
        Member *mem = m ? member_lookup(m, name) : NULL;
        if (!mem)
                return -ENOENT;
        mem->watched = watched;
        return 0;
}

const Member *membership_get_self(const Membership *m) {
        return m->self;
}

const Member *membership_get(const Membership *m, const char *name) {
        return member_lookup(m, name);
}

size_t membership_size(const Membership *m) {
        return g_hash_table_size(m->members);
}

size_t membership_count_alive(const Membership *m) {
        GHashTableIter it;
        Member *mem;
        size_t n = 0;

        g_hash_table_iter_init(&it, m->members);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *) &mem))
                if (member_reachable(mem))
                        n++;
        return n;
}

void membership_foreach(const Membership *m, void (*f)(const Member *member, void *userdata), void *userdata) {
        GHashTableIter it;
        Member *mem;

        g_hash_table_iter_init(&it, m->members);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *) &mem))
                f(mem, userdata);
}

const MembershipStats *membership_stats(const Membership *m) {
        return &m->stats;
}

Membership *membership_new(
                const MembershipParams *params,
                const char *self_name,
                uint64_t self_node_id,
                uint64_t incarnation,
                const MemberAddress *addresses, size_t n_addresses,
                const void *tags, size_t tags_size,
                uint64_t now,
                MembershipEventFunc callback, void *userdata) {

        Membership *m;

        if (!election_string_valid(self_name) || strlen(self_name) > MEMBER_NAME_MAX ||
            n_addresses > MEMBER_ADDRESSES_MAX || tags_size > MEMBER_TAGS_MAX)
                return NULL;

        m = g_new0(Membership, 1);
        if (params)
                m->p = *params;
        else
                membership_params_init_defaults(&m->p);
        if (m->p.probe_interval_usec == 0)
                m->p.probe_interval_usec = 100 * USEC_PER_MSEC;
        if (m->p.max_packet_payload == 0)
                m->p.max_packet_payload = 1200;
        m->p.retransmit_mult = MAX(m->p.retransmit_mult, 1u);
        m->p.suspicion_mult = MAX(m->p.suspicion_mult, 1u);
        m->p.suspicion_max_mult = MAX(m->p.suspicion_max_mult, 1u);

        m->members = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
        m->probe_order = g_ptr_array_new_with_free_func(g_free);
        m->probes = g_array_new(false, false, sizeof(Probe));
        m->relays = g_array_new(false, false, sizeof(Relay));
        m->broadcasts = g_ptr_array_new_with_free_func(g_free);
        m->rand = m->p.random_seed ? g_rand_new_with_seed(m->p.random_seed) : g_rand_new();
        m->next_seq = g_rand_int(m->rand);
        m->callback = callback;
        m->userdata = userdata;
        /* Spread the nodes' probe rounds over the interval. */
        m->next_probe_usec = now + (uint64_t) g_rand_double_range(m->rand, 0, (double) m->p.probe_interval_usec);

        Member *self = g_new0(Member, 1);
        g_strlcpy(self->name, self_name, sizeof self->name);
        self->node_id = self_node_id;
        self->incarnation = incarnation;
        self->state = MEMBER_ALIVE;
        self->is_self = true;
        self->n_addresses = n_addresses;
        if (n_addresses > 0)
                memcpy(self->addresses, addresses, n_addresses * sizeof addresses[0]);
        self->tags_size = tags_size;
        if (tags_size > 0)
                memcpy(self->tags, tags, tags_size);
        self->last_contact_usec = now;
        self->state_change_usec = now;
        g_hash_table_insert(m->members, self->name, self);
        m->self = self;
        return m;
}

Membership *membership_free(Membership *m) {
        if (!m)
                return NULL;
        g_hash_table_unref(m->members);
        g_ptr_array_unref(m->probe_order);
        g_array_unref(m->probes);
        g_array_unref(m->relays);
        g_ptr_array_unref(m->broadcasts);
        g_rand_free(m->rand);
        g_free(m);
        return NULL;
}
