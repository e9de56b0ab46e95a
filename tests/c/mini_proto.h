/*
 * Just enough protobuf to build and read jina.DataRequestProto bytes in the C tests (no protobuf
 * library needed). Header-only. Programs outside the tests use the library's request builder
 * (jina_net_request_builder_*) or classes generated from the installed protos.
 *
 *   DataRequestProto { HeaderProto header = 1 { string request_id = 1; }; repeated RouteProto routes = 3
 *                      { string executor = 1; } }
 */
#ifndef JINA_NET_MINI_PROTO_H
#define JINA_NET_MINI_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline size_t mp_put_varint(uint8_t *out, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    out[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  out[n++] = (uint8_t)v;
  return n;
}

/* Writes DataRequestProto{header{request_id}} into out (cap >= strlen(id) + 16); returns the length. */
static inline size_t mp_data_request(uint8_t *out, const char *request_id) {
  size_t id_len = strlen(request_id);
  uint8_t header[256];
  size_t h = 0;
  if (id_len > 200) return 0;
  header[h++] = 0x0a; /* request_id: field 1, length-delimited */
  h += mp_put_varint(header + h, id_len);
  memcpy(header + h, request_id, id_len);
  h += id_len;
  size_t n = 0;
  out[n++] = 0x0a; /* header: field 1 */
  n += mp_put_varint(out + n, h);
  memcpy(out + n, header, h);
  return n + h;
}

static inline int mp_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v) {
  *v = 0;
  for (int shift = 0; shift < 64 && *pos < len; shift += 7) {
    uint8_t b = p[(*pos)++];
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return 0;
  }
  return -1;
}

/* Finds the last (or first, if `first`) length-delimited field `field` at the top level of a message. */
static inline int mp_field(const uint8_t *p, size_t len, uint32_t field, int first, const uint8_t **out,
                           size_t *out_len) {
  size_t pos = 0;
  int found = -1;
  while (pos < len) {
    uint64_t key, v;
    if (mp_varint(p, len, &pos, &key)) return -1;
    switch (key & 7) {
      case 0:
        if (mp_varint(p, len, &pos, &v)) return -1;
        break;
      case 1: pos += 8; break;
      case 5: pos += 4; break;
      case 2:
        if (mp_varint(p, len, &pos, &v) || v > len - pos) return -1;
        if ((key >> 3) == field) {
          *out = p + pos;
          *out_len = (size_t)v;
          found = 0;
          if (first) return 0;
        }
        pos += (size_t)v;
        break;
      default: return -1;
    }
  }
  return found;
}

/* Copies a string field reached by a path of field numbers into buf (NUL-terminated); 0 on success. */
static inline int mp_string_at(const uint8_t *p, size_t len, const uint32_t *path, int depth, int last,
                               char *buf, size_t cap) {
  const uint8_t *cur = p;
  size_t cur_len = len;
  for (int i = 0; i < depth; i++) {
    const uint8_t *next;
    size_t next_len;
    if (mp_field(cur, cur_len, path[i], !(last && i == 0), &next, &next_len)) return -1;
    cur = next;
    cur_len = next_len;
  }
  if (cur_len + 1 > cap) return -1;
  memcpy(buf, cur, cur_len);
  buf[cur_len] = 0;
  return 0;
}

/* header.request_id of a DataRequestProto. */
static inline int mp_request_id(const uint8_t *p, size_t len, char *buf, size_t cap) {
  const uint32_t path[] = {1, 1};
  return mp_string_at(p, len, path, 2, 0, buf, cap);
}

/* routes[-1].executor of a DataRequestProto: who answered last. */
static inline int mp_last_executor(const uint8_t *p, size_t len, char *buf, size_t cap) {
  const uint32_t path[] = {3, 1};
  return mp_string_at(p, len, path, 2, 1, buf, cap);
}

/* Every routes[].executor of a DataRequestProto joined with " -> ": the path a request took. */
static inline int mp_route_chain(const uint8_t *p, size_t len, char *buf, size_t cap) {
  size_t pos = 0, used = 0;
  if (cap == 0) return -1;
  buf[0] = 0;
  while (pos < len) {
    uint64_t key, v;
    if (mp_varint(p, len, &pos, &key)) return -1;
    if ((key & 7) == 0) {
      if (mp_varint(p, len, &pos, &v)) return -1;
      continue;
    }
    if ((key & 7) == 1 || (key & 7) == 5) {
      pos += (key & 7) == 1 ? 8 : 4;
      continue;
    }
    if ((key & 7) != 2 || mp_varint(p, len, &pos, &v) || v > len - pos) return -1;
    if ((key >> 3) == 3) {
      const uint8_t *name;
      size_t name_len;
      if (mp_field(p + pos, (size_t)v, 1, 1, &name, &name_len) == 0) {
        const char *sep = used ? " -> " : "";
        size_t need = strlen(sep) + name_len;
        if (used + need + 1 > cap) return -1;
        memcpy(buf + used, sep, strlen(sep));
        memcpy(buf + used + strlen(sep), name, name_len);
        used += need;
        buf[used] = 0;
      }
    }
    pos += (size_t)v;
  }
  return 0;
}

#endif /* JINA_NET_MINI_PROTO_H */
