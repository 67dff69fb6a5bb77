/*
 * media._rtpfast: the per-viewer loop of the lean forwarder, in C.
 *
 * One call per published frame sends that frame's shared RTP payloads to
 * every viewer of the track: per viewer and packet only the 12-byte RTP
 * header (SSRC, sequence number, timestamp with the viewer's origin, marker,
 * payload type) and the viewer's pre-built one-byte header extension block
 * (mid, abs-send-time patched per frame) are written, the packet is protected
 * with libsrtp's srtp_protect on the viewer's own SRTP context (pylibsrtp's
 * bundled libsrtp 2.7: srtp_err_status_t srtp_protect(srtp_t, void *, int *),
 * in place, the function pointer comes from pylibsrtp's cffi module), and the
 * viewer's packets of the frame leave in one sendmmsg on the viewer's socket.
 *
 * The interface is the one of media/rtpslow.py (the pure-Python fallback);
 * tests/media/test_rtpsend.py runs the same tests against both. Everything
 * runs with the GIL held, on the event loop's thread: the module-level
 * buffers are never used concurrently.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define RING 512          /* per-viewer seq -> history index ring; divides 2^16 */
#define MAX_PACKET 1500   /* RTP packet before SRTP */
#define SLOT 1700         /* room for the SRTP auth tag (and MKI) after it */
#define BATCH 64          /* packets per sendmmsg */
#define MAX_EXT 64

typedef int (*protect_fn)(void *ctx, void *hdr, int *len);

typedef struct {
    PyObject_HEAD
    int fd;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    void *srtp;
    protect_fn protect;
    PyObject *keepalive;
    uint32_t ssrc, rtx_ssrc, ts_origin;
    int pt, rtx_pt;
    uint16_t seq, rtx_seq;
    uint8_t ext[MAX_EXT];
    int ext_len, abs_offset;
    unsigned long long packets, octets, refused, errors, skipped, resent;
    uint32_t last_ts;
    unsigned long long last_ntp;
    int waiting;
    int udp; /* a UDP socket (GSO applies); else e.g. AF_UNIX */
    long long ring_idx[RING];
    uint32_t ring_seq[RING]; /* seq + 1; 0 = empty */
} Viewer;

static unsigned char bufs[BATCH][SLOT];
static struct mmsghdr msgs[BATCH];
static struct iovec iovs[BATCH];
static Py_ssize_t plens[BATCH];

static int parse_addr(PyObject *addr, struct sockaddr_storage *out, socklen_t *len) {
    const char *host;
    int port;
    if (addr == Py_None) { /* a connected socket: no destination per message */
        *len = 0;
        return 0;
    }
    if (!PyArg_ParseTuple(addr, "si", &host, &port)) {
        PyErr_Clear();
        if (!PyTuple_Check(addr) || PyTuple_GET_SIZE(addr) < 2) {
            PyErr_SetString(PyExc_ValueError, "addr must be (host, port)");
            return -1;
        }
        PyObject *h = PyTuple_GET_ITEM(addr, 0), *p = PyTuple_GET_ITEM(addr, 1);
        host = PyUnicode_AsUTF8(h);
        port = (int)PyLong_AsLong(p);
        if (host == NULL || PyErr_Occurred()) return -1;
    }
    if (port < 0 || port > 65535) {
        PyErr_SetString(PyExc_ValueError, "port out of range");
        return -1;
    }
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *a4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof(*a4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*a6);
        return 0;
    }
    PyErr_Format(PyExc_ValueError, "not an IP address: %s", host);
    return -1;
}

static int Viewer_init(Viewer *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"fd", "addr", "srtp_ptr", "protect_ptr", "keepalive", "ssrc",
                             "pt", "ts_origin", "seq", "ext", "abs_offset", "rtx_ssrc",
                             "rtx_pt", "rtx_seq", NULL};
    int fd, pt, abs_offset, rtx_pt;
    PyObject *addr, *keepalive;
    unsigned long long srtp_ptr, protect_ptr;
    unsigned long ssrc, ts_origin, rtx_ssrc;
    unsigned int seq, rtx_seq;
    Py_buffer ext;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iOKKOkikIy*ikiI", kwlist, &fd, &addr,
                                     &srtp_ptr, &protect_ptr, &keepalive, &ssrc, &pt,
                                     &ts_origin, &seq, &ext, &abs_offset, &rtx_ssrc, &rtx_pt,
                                     &rtx_seq))
        return -1;
    if (ext.len > MAX_EXT || ext.len % 4 != 0 || (abs_offset >= 0 && abs_offset + 3 > (int)ext.len) ||
        (ext.len == 0 && abs_offset >= 0)) {
        PyBuffer_Release(&ext);
        PyErr_SetString(PyExc_ValueError, "bad header extension block");
        return -1;
    }
    if (pt < 0 || pt > 127 || rtx_pt > 127 || srtp_ptr == 0 || protect_ptr == 0) {
        PyBuffer_Release(&ext);
        PyErr_SetString(PyExc_ValueError, "bad payload type or SRTP pointers");
        return -1;
    }
    if (parse_addr(addr, &self->addr, &self->addrlen) < 0) {
        PyBuffer_Release(&ext);
        return -1;
    }
    memcpy(self->ext, ext.buf, ext.len);
    self->ext_len = (int)ext.len;
    PyBuffer_Release(&ext);
    if (self->fd >= 0) close(self->fd);
    self->fd = dup(fd);
    if (self->fd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    int proto = 0;
    socklen_t plen = sizeof(proto);
    self->udp = getsockopt(self->fd, SOL_SOCKET, SO_PROTOCOL, &proto, &plen) == 0 &&
                proto == IPPROTO_UDP;
    self->abs_offset = abs_offset;
    self->srtp = (void *)(uintptr_t)srtp_ptr;
    self->protect = (protect_fn)(uintptr_t)protect_ptr;
    Py_INCREF(keepalive);
    Py_XSETREF(self->keepalive, keepalive);
    self->ssrc = (uint32_t)ssrc;
    self->pt = pt;
    self->ts_origin = (uint32_t)ts_origin;
    self->seq = (uint16_t)seq;
    self->rtx_ssrc = (uint32_t)rtx_ssrc;
    self->rtx_pt = rtx_pt;
    self->rtx_seq = (uint16_t)rtx_seq;
    self->packets = self->octets = self->refused = self->errors = 0;
    self->skipped = self->resent = 0;
    self->last_ts = 0;
    self->last_ntp = 0;
    self->waiting = 1;
    memset(self->ring_seq, 0, sizeof(self->ring_seq));
    return 0;
}

static PyObject *Viewer_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    Viewer *self = (Viewer *)type->tp_alloc(type, 0);
    if (self != NULL) self->fd = -1;
    return (PyObject *)self;
}

static void Viewer_dealloc(Viewer *self) {
    if (self->fd >= 0) close(self->fd);
    Py_XDECREF(self->keepalive);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Viewer_close(Viewer *self, PyObject *unused) {
    if (self->fd >= 0) close(self->fd);
    self->fd = -1;
    Py_CLEAR(self->keepalive);
    Py_RETURN_NONE;
}

static PyObject *Viewer_lookup(Viewer *self, PyObject *arg) {
    long seq = PyLong_AsLong(arg);
    if (seq == -1 && PyErr_Occurred()) return NULL;
    if (seq < 0 || seq > 0xFFFF) return PyLong_FromLong(-1);
    int slot = (int)(seq & (RING - 1));
    if (self->ring_seq[slot] != (uint32_t)seq + 1) return PyLong_FromLong(-1);
    return PyLong_FromLongLong(self->ring_idx[slot]);
}

/* A new route for the same RTP stream (an ICE restart, or the peer nominated another
 * pair): a copy of the new socket and the new destination; numbering, SRTP and the ring
 * stay. A closed viewer stays closed. */
static PyObject *Viewer_reroute(Viewer *self, PyObject *args) {
    int fd;
    PyObject *addr;
    struct sockaddr_storage out;
    socklen_t outlen;
    if (!PyArg_ParseTuple(args, "iO", &fd, &addr)) return NULL;
    if (parse_addr(addr, &out, &outlen) < 0) return NULL;
    if (self->fd < 0) Py_RETURN_NONE;
    int copy = dup(fd);
    if (copy < 0) return PyErr_SetFromErrno(PyExc_OSError);
    int proto = 0;
    socklen_t plen = sizeof(proto);
    int udp = getsockopt(copy, SOL_SOCKET, SO_PROTOCOL, &proto, &plen) == 0 && proto == IPPROTO_UDP;
    close(self->fd);
    self->fd = copy;
    self->udp = udp;
    self->addr = out;
    self->addrlen = outlen;
    Py_RETURN_NONE;
}

static PyObject *Viewer_get_closed(Viewer *self, void *c) { return PyBool_FromLong(self->fd < 0); }

static PyMethodDef Viewer_methods[] = {
    {"close", (PyCFunction)Viewer_close, METH_NOARGS, "Stop sending; close the socket copy."},
    {"reroute", (PyCFunction)Viewer_reroute, METH_VARARGS,
     "reroute(fd, addr): send on a copy of fd to addr from now on (same numbering, SRTP)."},
    {"lookup", (PyCFunction)Viewer_lookup, METH_O,
     "History index of the packet sent with sequence number seq, or -1."},
    {NULL}};

static PyMemberDef Viewer_members[] = {
    {"ssrc", T_UINT, offsetof(Viewer, ssrc), READONLY, NULL},
    {"rtx_ssrc", T_UINT, offsetof(Viewer, rtx_ssrc), READONLY, NULL},
    {"ts_origin", T_UINT, offsetof(Viewer, ts_origin), READONLY, NULL},
    {"pt", T_INT, offsetof(Viewer, pt), READONLY, NULL},
    {"rtx_pt", T_INT, offsetof(Viewer, rtx_pt), READONLY, NULL},
    {"seq", T_USHORT, offsetof(Viewer, seq), READONLY, "next sequence number"},
    {"rtx_seq", T_USHORT, offsetof(Viewer, rtx_seq), READONLY, NULL},
    {"packets", T_ULONGLONG, offsetof(Viewer, packets), READONLY, "RTP packets sent"},
    {"octets", T_ULONGLONG, offsetof(Viewer, octets), READONLY, "payload octets sent"},
    {"refused", T_ULONGLONG, offsetof(Viewer, refused), READONLY, "sends the socket refused"},
    {"errors", T_ULONGLONG, offsetof(Viewer, errors), READONLY, "other send errors"},
    {"skipped", T_ULONGLONG, offsetof(Viewer, skipped), READONLY, "frames skipped waiting"},
    {"resent", T_ULONGLONG, offsetof(Viewer, resent), READONLY, "retransmissions sent"},
    {"last_ts", T_UINT, offsetof(Viewer, last_ts), READONLY, "RTP timestamp last sent"},
    {"last_ntp", T_ULONGLONG, offsetof(Viewer, last_ntp), READONLY, "its NTP time"},
    {"waiting", T_INT, offsetof(Viewer, waiting), 0, "1 while it waits for a keyframe"},
    {NULL}};

static PyGetSetDef Viewer_getset[] = {{"closed", (getter)Viewer_get_closed, NULL, NULL, NULL},
                                      {NULL}};

static PyTypeObject ViewerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "media._rtpfast.Viewer",
    .tp_basicsize = sizeof(Viewer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One viewer's RTP state for one track (see media/rtpslow.py).",
    .tp_new = Viewer_new,
    .tp_init = (initproc)Viewer_init,
    .tp_dealloc = (destructor)Viewer_dealloc,
    .tp_methods = Viewer_methods,
    .tp_members = Viewer_members,
    .tp_getset = Viewer_getset,
};

/* Header + extension into buf; returns the header length. */
static inline int write_header(const Viewer *v, unsigned char *buf, int marker, int pt,
                               uint16_t seq, uint32_t ts, uint32_t ssrc, uint32_t abs) {
    buf[0] = v->ext_len ? 0x90 : 0x80;
    buf[1] = (unsigned char)((marker ? 0x80 : 0) | pt);
    buf[2] = seq >> 8;
    buf[3] = seq & 0xFF;
    buf[4] = ts >> 24;
    buf[5] = (ts >> 16) & 0xFF;
    buf[6] = (ts >> 8) & 0xFF;
    buf[7] = ts & 0xFF;
    buf[8] = ssrc >> 24;
    buf[9] = (ssrc >> 16) & 0xFF;
    buf[10] = (ssrc >> 8) & 0xFF;
    buf[11] = ssrc & 0xFF;
    if (!v->ext_len) return 12;
    memcpy(buf + 12, v->ext, v->ext_len);
    if (v->abs_offset >= 0) {
        unsigned char *a = buf + 12 + v->abs_offset;
        a[0] = (abs >> 16) & 0xFF;
        a[1] = (abs >> 8) & 0xFF;
        a[2] = abs & 0xFF;
    }
    return 12 + v->ext_len;
}

/*
 * UDP GSO (UDP_SEGMENT, Linux >= 4.18): the packets of one run leave as one
 * datagram "super-packet" the kernel splits into equal segments (the last may
 * be shorter), so the per-packet cost of the IP/UDP send path is paid once
 * per run. Equal sizes come from RTP padding (RFC 3550 §5.1, at most PAD_MAX
 * bytes): aiortc's H.264 FU-A fragments of one NAL differ by at most one byte.
 * If the kernel refuses GSO, it is switched off for the process and the frame
 * goes out one datagram per packet.
 */
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#define PAD_MAX 32
#define GSO_MAX_BYTES 60000
static int gso_enabled = 1;
static int pads[BATCH];
static int run_len[BATCH]; /* at a run's first packet: its packet count; else 0 */
static int lens[BATCH];
static union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
} cbufs[BATCH];

/* Group packets [0, n) of sizes plen[] into runs; sets pads[] and run_len[]. */
static void plan_runs(const Py_ssize_t *plen, int n, int frame_ends, int overhead, int gso) {
    int start = -1, size = 0, count = 0, max_segments = 1;
    for (int i = 0; i < n; i++) {
        int L = (int)plen[i];
        pads[i] = 0;
        run_len[i] = 0;
        int last = frame_ends && i == n - 1;
        if (start >= 0 && gso && count < max_segments && L <= size) {
            if (L < size && size - L <= PAD_MAX && !last) {
                pads[i] = size - L; /* padded to the run's size */
            } else if (L < size) {
                run_len[start] = ++count; /* a shorter last segment ends the run */
                start = -1;
                continue;
            }
            run_len[start] = ++count;
            continue;
        }
        start = i;
        size = L;
        count = 1;
        run_len[i] = 1;
        max_segments = GSO_MAX_BYTES / (L + overhead);
        if (max_segments > BATCH) max_segments = BATCH;
        if (max_segments < 1) max_segments = 1;
    }
}

/* Messages for packets [0, n): one per run (GSO) or one per packet. Returns the count. */
static int build_msgs(Viewer *v, int n, int use_gso, int *msg_packets) {
    int m = 0;
    for (int k = 0; k < n;) {
        int count = use_gso && run_len[k] ? run_len[k] : 1;
        struct msghdr *h = &msgs[m].msg_hdr;
        memset(h, 0, sizeof(*h));
        h->msg_name = v->addrlen ? &v->addr : NULL;
        h->msg_namelen = v->addrlen;
        for (int j = 0; j < count; j++) {
            iovs[k + j].iov_base = bufs[k + j];
            iovs[k + j].iov_len = (size_t)lens[k + j];
        }
        h->msg_iov = &iovs[k];
        h->msg_iovlen = (size_t)count;
        if (count > 1) {
            h->msg_control = cbufs[m].buf;
            h->msg_controllen = sizeof(cbufs[m].buf);
            struct cmsghdr *c = CMSG_FIRSTHDR(h);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t seg = (uint16_t)lens[k];
            memcpy(CMSG_DATA(c), &seg, sizeof(seg));
        }
        msg_packets[m++] = count;
        k += count;
    }
    return m;
}

/* Send packets bufs[0..n) (lens[]): packets sent, -1 if the socket refused at once, -2 error. */
static int flush(Viewer *v, int n) {
    static int msg_packets[BATCH];
    int use_gso = gso_enabled && v->udp;
    int m = build_msgs(v, n, use_gso, msg_packets);
    int done = 0, packets = 0;
    while (done < m) {
        int r = sendmmsg(v->fd, msgs + done, (unsigned int)(m - done), MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
                return packets ? packets : -1;
            if (use_gso && msg_packets[done] > 1 &&
                (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP || errno == ENOPROTOOPT)) {
                gso_enabled = use_gso = 0; /* the kernel cannot: one datagram per packet */
                int first = packets;
                for (int j = first; j < n; j++) run_len[j] = 0;
                /* rebuild the rest without GSO: shift the unsent packets to the front */
                for (int j = first; first > 0 && j < n; j++) {
                    memmove(bufs[j - first], bufs[j], (size_t)lens[j]);
                    lens[j - first] = lens[j];
                }
                n -= first;
                m = build_msgs(v, n, 0, msg_packets);
                done = 0;
                continue;
            }
            return -2;
        }
        for (int j = done; j < done + r; j++) packets += msg_packets[j];
        done += r;
    }
    return packets;
}

/* send_frame(viewers, payloads, timestamp, first_index, keyframe, abs_send_time, ntp) -> refused */
static PyObject *send_frame(PyObject *mod, PyObject *args) {
    PyObject *viewers, *payloads;
    unsigned long timestamp, abs_send_time;
    long long first_index;
    int keyframe;
    unsigned long long ntp;
    if (!PyArg_ParseTuple(args, "OOkLpkK", &viewers, &payloads, &timestamp, &first_index,
                          &keyframe, &abs_send_time, &ntp))
        return NULL;
    PyObject *vseq = PySequence_Fast(viewers, "viewers must be a sequence");
    if (vseq == NULL) return NULL;
    PyObject *pseq = PySequence_Fast(payloads, "payloads must be a sequence");
    if (pseq == NULL) {
        Py_DECREF(vseq);
        return NULL;
    }
    Py_ssize_t nv = PySequence_Fast_GET_SIZE(vseq), np = PySequence_Fast_GET_SIZE(pseq);
    PyObject **vitems = PySequence_Fast_ITEMS(vseq), **pitems = PySequence_Fast_ITEMS(pseq);
    for (Py_ssize_t i = 0; i < np; i++) {
        if (!PyBytes_Check(pitems[i]) ||
            PyBytes_GET_SIZE(pitems[i]) > MAX_PACKET - 12 - MAX_EXT - PAD_MAX) {
            Py_DECREF(vseq);
            Py_DECREF(pseq);
            PyErr_SetString(PyExc_ValueError, "payloads must be bytes of at most 1392 bytes");
            return NULL;
        }
    }
    for (Py_ssize_t j = 0; j < nv; j++) {
        if (!PyObject_TypeCheck(vitems[j], &ViewerType)) {
            Py_DECREF(vseq);
            Py_DECREF(pseq);
            PyErr_SetString(PyExc_TypeError, "viewers must be media._rtpfast.Viewer");
            return NULL;
        }
    }
    Py_ssize_t plen[BATCH];
    long refused = 0;
    for (Py_ssize_t j = 0; j < nv; j++) {
        Viewer *v = (Viewer *)vitems[j];
        if (v->fd < 0 || np == 0) continue;
        if (v->waiting) {
            if (!keyframe) {
                v->skipped++;
                continue;
            }
            v->waiting = 0;
        }
        uint32_t ts = (uint32_t)(v->ts_origin + (uint32_t)timestamp);
        int state = 0; /* 0 sending, 1 refused, 2 error */
        for (Py_ssize_t c0 = 0; c0 < np; c0 += BATCH) {
            int n = (int)(np - c0 < BATCH ? np - c0 : BATCH);
            for (int i = 0; i < n; i++) plen[i] = PyBytes_GET_SIZE(pitems[c0 + i]);
            plan_runs(plen, n, c0 + n == np, 12 + v->ext_len + 16, gso_enabled && v->udp);
            int k = 0, broken = 0;
            unsigned long long octets = 0;
            for (int i = 0; i < n; i++) {
                Py_ssize_t idx = c0 + i;
                uint16_t seq = v->seq++;
                int slot = seq & (RING - 1);
                v->ring_idx[slot] = first_index + idx;
                v->ring_seq[slot] = (uint32_t)seq + 1;
                if (state) continue; /* numbered (NACK can repair it) but not sent */
                unsigned char *b = bufs[k];
                int hl = write_header(v, b, idx == np - 1, v->pt, seq, ts, v->ssrc,
                                      (uint32_t)abs_send_time);
                memcpy(b + hl, PyBytes_AS_STRING(pitems[idx]), (size_t)plen[i]);
                int len = hl + (int)plen[i];
                int pad = pads[i];
                if (pad) {
                    b[0] |= 0x20;
                    memset(b + len, 0, (size_t)(pad - 1));
                    b[len + pad - 1] = (unsigned char)pad;
                    len += pad;
                }
                if (v->protect(v->srtp, b, &len) != 0) {
                    v->errors++;
                    broken = 1; /* runs no longer line up: one datagram per packet */
                    continue;
                }
                lens[k] = len;
                run_len[k] = run_len[i];
                plens[k] = plen[i];
                k++;
            }
            if (broken)
                for (int m = 0; m < k; m++) run_len[m] = 1;
            if (k > 0) {
                int r = flush(v, k);
                if (r > 0) {
                    v->packets += (unsigned long long)r;
                    for (int m = 0; m < r; m++) octets += (unsigned long long)plens[m];
                    v->octets += octets;
                    v->last_ts = ts;
                    v->last_ntp = ntp;
                }
                if (r == -2) state = 2;
                else if (r < k) state = 1;
            }
        }
        if (state == 1) {
            v->refused++;
            v->waiting = 1;
            refused++;
        } else if (state == 2) {
            v->errors++;
        }
    }
    Py_DECREF(vseq);
    Py_DECREF(pseq);
    return PyLong_FromLong(refused);
}

static PyObject *set_gso(PyObject *mod, PyObject *arg) {
    int on = PyObject_IsTrue(arg);
    if (on < 0) return NULL;
    int before = gso_enabled;
    gso_enabled = on;
    return PyBool_FromLong(before);
}

/* resend(viewer, seq, payload, timestamp, marker, abs_send_time) -> bool */
static PyObject *resend(PyObject *mod, PyObject *args) {
    PyObject *vo;
    unsigned int seq;
    Py_buffer payload;
    unsigned long timestamp, abs_send_time;
    int marker;
    if (!PyArg_ParseTuple(args, "O!Iy*kpk", &ViewerType, &vo, &seq, &payload, &timestamp,
                          &marker, &abs_send_time))
        return NULL;
    Viewer *v = (Viewer *)vo;
    if (payload.len > MAX_PACKET - 14 - MAX_EXT) {
        PyBuffer_Release(&payload);
        PyErr_SetString(PyExc_ValueError, "payload too long");
        return NULL;
    }
    if (v->fd < 0) {
        PyBuffer_Release(&payload);
        Py_RETURN_FALSE;
    }
    uint32_t ts = (uint32_t)(v->ts_origin + (uint32_t)timestamp);
    unsigned char *buf = bufs[0];
    int hl, len;
    if (v->rtx_pt >= 0) {
        hl = write_header(v, buf, marker, v->rtx_pt, v->rtx_seq++, ts, v->rtx_ssrc,
                          (uint32_t)abs_send_time);
        buf[hl] = (seq >> 8) & 0xFF;
        buf[hl + 1] = seq & 0xFF;
        memcpy(buf + hl + 2, payload.buf, (size_t)payload.len);
        len = hl + 2 + (int)payload.len;
    } else {
        hl = write_header(v, buf, marker, v->pt, (uint16_t)seq, ts, v->ssrc,
                          (uint32_t)abs_send_time);
        memcpy(buf + hl, payload.buf, (size_t)payload.len);
        len = hl + (int)payload.len;
    }
    PyBuffer_Release(&payload);
    if (v->protect(v->srtp, buf, &len) != 0) {
        v->errors++;
        Py_RETURN_FALSE;
    }
    ssize_t r = sendto(v->fd, buf, (size_t)len, MSG_DONTWAIT,
                       v->addrlen ? (struct sockaddr *)&v->addr : NULL, v->addrlen);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) v->refused++;
        else v->errors++;
        Py_RETURN_FALSE;
    }
    v->resent++;
    Py_RETURN_TRUE;
}

static PyMethodDef module_methods[] = {
    {"send_frame", send_frame, METH_VARARGS,
     "send_frame(viewers, payloads, timestamp, first_index, keyframe, abs_send_time, ntp)"},
    {"set_gso", set_gso, METH_O, "set_gso(on) -> previous: send runs of packets with UDP GSO"},
    {"resend", resend, METH_VARARGS,
     "resend(viewer, seq, payload, timestamp, marker, abs_send_time) -> bool"},
    {NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "media._rtpfast",
                                    "The lean forwarder's per-viewer loop in C.", -1,
                                    module_methods};

PyMODINIT_FUNC PyInit__rtpfast(void) {
    if (PyType_Ready(&ViewerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&ViewerType);
    if (PyModule_AddObject(m, "Viewer", (PyObject *)&ViewerType) < 0) {
        Py_DECREF(&ViewerType);
        Py_DECREF(m);
        return NULL;
    }
    PyModule_AddIntConstant(m, "RING", RING);
    return m;
}
