// Raw ICMPv6 sockets tied to one interface, for Neighbor Discovery messages (router
// advertisements) that Node cannot send: node has no raw sockets.
//
// icmp6SocketOnDevice(ifname, { types, groups }) -> { fd, ifindex }
//   SOCK_RAW IPPROTO_ICMPV6, non-blocking, SO_BINDTODEVICE ifname; unicast and multicast
//   hop limit 255 (RFC 4861 receivers drop ND messages with any other); multicast out of
//   ifname, not looped back; ICMP6_FILTER passes only `types` (none if empty); each of
//   `groups` (e.g. ff02::2) joined on ifname; IPV6_RECVHOPLIMIT on, so that a reader can
//   check a solicitation's hop limit. The kernel computes the ICMPv6 checksum of what is
//   sent and checks that of what is received.
// icmp6Send(fd, ifindex, address, data) -> bytes sent
//   sendto(address%ifindex). The kernel picks the source: the interface's link-local
//   address for a link-local or link-scope multicast destination.
// icmp6Receive(fd) -> { data, source, hopLimit, truncated } | null
//   One non-blocking recvmsg; null when nothing is waiting (EAGAIN). hopLimit -1 when the
//   kernel gave none. Meant to be called from a timer, so that Node's loop never blocks.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kaboot_native.h"

#define MAX_TYPES 16
#define MAX_GROUPS 8

// Reads opts[key] as an array; *out is NULL when the key is absent or undefined.
static bool get_array_option(napi_env env, napi_value opts, const char* key, napi_value* out, uint32_t* len) {
  *out = NULL;
  *len = 0;
  bool has = false;
  if (napi_has_named_property(env, opts, key, &has) != napi_ok) return false;
  if (!has) return true;
  napi_value v;
  napi_valuetype t;
  if (napi_get_named_property(env, opts, key, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) return false;
  if (t == napi_undefined) return true;
  bool is_array = false;
  if (napi_is_array(env, v, &is_array) != napi_ok || !is_array || napi_get_array_length(env, v, len) != napi_ok) {
    char msg[128];
    snprintf(msg, sizeof msg, "icmp6SocketOnDevice: option %s must be an array", key);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  *out = v;
  return true;
}

static bool set_int(napi_env env, int fd, int level, int name, int value, const char* label) {
  if (setsockopt(fd, level, name, &value, sizeof value) == 0) return true;
  throw_errno(env, errno, "setsockopt", label);
  return false;
}

napi_value icmp6_socket_on_device(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype t;
  char ifname[IFNAMSIZ + 1];
  if (!get_ifname(env, argc >= 1 ? argv[0] : NULL, ifname, "icmp6SocketOnDevice")) return NULL;

  struct icmp6_filter filter;
  ICMP6_FILTER_SETBLOCKALL(&filter);
  struct in6_addr groups[MAX_GROUPS];
  uint32_t n_groups = 0;
  if (argc >= 2 && napi_typeof(env, argv[1], &t) == napi_ok && t != napi_undefined) {
    if (t != napi_object) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "icmp6SocketOnDevice: opts must be an object");
      return NULL;
    }
    napi_value arr;
    uint32_t len;
    if (!get_array_option(env, argv[1], "types", &arr, &len)) return NULL;
    if (len > MAX_TYPES) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "icmp6SocketOnDevice: at most 16 types");
      return NULL;
    }
    for (uint32_t i = 0; arr && i < len; i++) {
      napi_value e;
      int32_t type = -1;
      CHECK_NAPI(env, napi_get_element(env, arr, i, &e));
      if (napi_typeof(env, e, &t) != napi_ok || t != napi_number || napi_get_value_int32(env, e, &type) != napi_ok ||
          type < 0 || type > 255) {
        napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "icmp6SocketOnDevice: types must be integers from 0 to 255");
        return NULL;
      }
      ICMP6_FILTER_SETPASS(type, &filter);
    }
    if (!get_array_option(env, argv[1], "groups", &arr, &len)) return NULL;
    if (len > MAX_GROUPS) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "icmp6SocketOnDevice: at most 8 groups");
      return NULL;
    }
    for (uint32_t i = 0; arr && i < len; i++) {
      napi_value e;
      char text[INET6_ADDRSTRLEN + 1];
      size_t text_len = 0;
      CHECK_NAPI(env, napi_get_element(env, arr, i, &e));
      if (napi_typeof(env, e, &t) != napi_ok || t != napi_string ||
          napi_get_value_string_utf8(env, e, text, sizeof text, &text_len) != napi_ok ||
          inet_pton(AF_INET6, text, &groups[i]) != 1 || !IN6_IS_ADDR_MULTICAST(&groups[i])) {
        napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "icmp6SocketOnDevice: groups must be IPv6 multicast addresses");
        return NULL;
      }
      n_groups = i + 1;
    }
  }

  unsigned ifindex = if_nametoindex(ifname);
  if (ifindex == 0) {
    throw_errno(env, errno, "if_nametoindex", ifname);
    return NULL;
  }
  int fd = socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMPV6);
  if (fd < 0) {
    throw_errno(env, errno, "socket", "AF_INET6 SOCK_RAW IPPROTO_ICMPV6");
    return NULL;
  }
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname)) != 0) {
    int err = errno;
    close(fd);
    char label[64];
    snprintf(label, sizeof label, "SO_BINDTODEVICE %s", ifname);
    throw_errno(env, err, "setsockopt", label);
    return NULL;
  }
  if (!set_int(env, fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 255, "IPV6_UNICAST_HOPS") ||
      !set_int(env, fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 255, "IPV6_MULTICAST_HOPS") ||
      !set_int(env, fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, (int)ifindex, "IPV6_MULTICAST_IF") ||
      !set_int(env, fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0, "IPV6_MULTICAST_LOOP") ||
      !set_int(env, fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1, "IPV6_RECVHOPLIMIT")) {
    close(fd);
    return NULL;
  }
  if (setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter) != 0) {
    int err = errno;
    close(fd);
    throw_errno(env, err, "setsockopt", "ICMP6_FILTER");
    return NULL;
  }
  for (uint32_t i = 0; i < n_groups; i++) {
    struct ipv6_mreq mreq;
    mreq.ipv6mr_multiaddr = groups[i];
    mreq.ipv6mr_interface = ifindex;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mreq, sizeof mreq) != 0) {
      int err = errno;
      close(fd);
      char label[96], text[INET6_ADDRSTRLEN];
      inet_ntop(AF_INET6, &groups[i], text, sizeof text);
      snprintf(label, sizeof label, "IPV6_JOIN_GROUP %s on %s", text, ifname);
      throw_errno(env, err, "setsockopt", label);
      return NULL;
    }
  }

  napi_value result, js_fd, js_index;
  if (napi_create_object(env, &result) != napi_ok || napi_create_int32(env, fd, &js_fd) != napi_ok ||
      napi_create_uint32(env, ifindex, &js_index) != napi_ok ||
      napi_set_named_property(env, result, "fd", js_fd) != napi_ok ||
      napi_set_named_property(env, result, "ifindex", js_index) != napi_ok) {
    close(fd);
    throw_napi_failure(env, "creating the result");
    return NULL;
  }
  return result;
}

static bool get_fd(napi_env env, napi_value v, int32_t* fd, const char* fn) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number || napi_get_value_int32(env, v, fd) != napi_ok || *fd < 0) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s: fd must be a non-negative integer", fn);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  return true;
}

napi_value icmp6_send(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 4) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "icmp6Send: needs fd, ifindex, address, data");
    return NULL;
  }
  if (!get_fd(env, argv[0], &fd, "icmp6Send")) return NULL;
  napi_valuetype t;
  uint32_t ifindex = 0;
  if (napi_typeof(env, argv[1], &t) != napi_ok || t != napi_number || napi_get_value_uint32(env, argv[1], &ifindex) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "icmp6Send: ifindex must be a number");
    return NULL;
  }
  char text[INET6_ADDRSTRLEN + 1];
  size_t text_len = 0;
  struct sockaddr_in6 to;
  memset(&to, 0, sizeof to);
  to.sin6_family = AF_INET6;
  to.sin6_scope_id = ifindex;
  if (napi_typeof(env, argv[2], &t) != napi_ok || t != napi_string ||
      napi_get_value_string_utf8(env, argv[2], text, sizeof text, &text_len) != napi_ok ||
      inet_pton(AF_INET6, text, &to.sin6_addr) != 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "icmp6Send: address must be an IPv6 address without scope");
    return NULL;
  }
  bool is_buffer = false, is_typed = false;
  void* data = NULL;
  size_t len = 0;
  napi_is_buffer(env, argv[3], &is_buffer);
  if (is_buffer) {
    CHECK_NAPI(env, napi_get_buffer_info(env, argv[3], &data, &len));
  } else {
    napi_is_typedarray(env, argv[3], &is_typed);
    napi_typedarray_type ta_type;
    napi_value ab;
    size_t offset;
    if (!is_typed || napi_get_typedarray_info(env, argv[3], &ta_type, &len, &data, &ab, &offset) != napi_ok ||
        ta_type != napi_uint8_array) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "icmp6Send: data must be a Buffer or Uint8Array");
      return NULL;
    }
  }
  if (len < 4) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "icmp6Send: an ICMPv6 message has at least 4 bytes");
    return NULL;
  }
  ssize_t sent = sendto(fd, data, len, 0, (struct sockaddr*)&to, sizeof to);
  if (sent < 0) {
    char detail[96];
    snprintf(detail, sizeof detail, "%s%%%u", text, ifindex);
    throw_errno(env, errno, "sendto", detail);
    return NULL;
  }
  napi_value result;
  CHECK_NAPI(env, napi_create_int64(env, (int64_t)sent, &result));
  return result;
}

napi_value icmp6_receive(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !get_fd(env, argv[0], &fd, "icmp6Receive")) return NULL;

  unsigned char buf[2048];
  union {
    struct cmsghdr align;
    char bytes[CMSG_SPACE(sizeof(int)) * 4];
  } control;
  struct sockaddr_in6 from;
  struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_name = &from;
  msg.msg_namelen = sizeof from;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.bytes;
  msg.msg_controllen = sizeof control.bytes;
  ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      napi_value null_value;
      CHECK_NAPI(env, napi_get_null(env, &null_value));
      return null_value;
    }
    char detail[32];
    snprintf(detail, sizeof detail, "fd %d", fd);
    throw_errno(env, errno, "recvmsg", detail);
    return NULL;
  }
  int hop_limit = -1;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      memcpy(&hop_limit, CMSG_DATA(c), sizeof hop_limit);
    }
  }
  char source[INET6_ADDRSTRLEN] = "";
  inet_ntop(AF_INET6, &from.sin6_addr, source, sizeof source);

  napi_value result, js_data, js_source, js_hops, js_trunc;
  void* copy = NULL;
  CHECK_NAPI(env, napi_create_buffer_copy(env, (size_t)n, buf, &copy, &js_data));
  CHECK_NAPI(env, napi_create_string_utf8(env, source, NAPI_AUTO_LENGTH, &js_source));
  CHECK_NAPI(env, napi_create_int32(env, hop_limit, &js_hops));
  CHECK_NAPI(env, napi_get_boolean(env, (msg.msg_flags & MSG_TRUNC) != 0, &js_trunc));
  CHECK_NAPI(env, napi_create_object(env, &result));
  CHECK_NAPI(env, napi_set_named_property(env, result, "data", js_data));
  CHECK_NAPI(env, napi_set_named_property(env, result, "source", js_source));
  CHECK_NAPI(env, napi_set_named_property(env, result, "hopLimit", js_hops));
  CHECK_NAPI(env, napi_set_named_property(env, result, "truncated", js_trunc));
  return result;
}
