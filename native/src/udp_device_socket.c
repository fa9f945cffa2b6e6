// kaboot's native addon: what Node's dgram cannot do by itself.
//
// udpSocketOnDevice(ifname, port, { broadcast, reuseAddr, address }) -> fd
//   An IPv4 UDP socket tied to one interface (SO_BINDTODEVICE) and bound, ready for
//   dgram's bind({ fd }). Tying it to the device is what lets several sockets share
//   port 67 (one per interface), receive only their own interface's broadcasts, and
//   send a limited broadcast (255.255.255.255) out of the right interface.
// closeFd(fd)
//   For failure paths, when the fd never reached dgram, and to close ICMPv6 sockets.
// icmp6SocketOnDevice / icmp6Send / icmp6Receive: see icmp6_socket.c.
//
// Errors are JS Errors carrying code (e.g. "ENODEV"), errno and syscall, like Node's own.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <node_api.h>

#include "kaboot_native.h"

void throw_napi_failure(napi_env env, const char* what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  const napi_extended_error_info* info = NULL;
  napi_get_last_error_info(env, &info);
  char msg[256];
  snprintf(msg, sizeof msg, "kaboot native: %s failed: %s", what,
           info && info->error_message ? info->error_message : "unknown N-API error");
  napi_throw_error(env, NULL, msg);
}

static const char* errno_name(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char* name = strerrorname_np(err);
  if (name) return name;
#endif
  switch (err) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENODEV: return "ENODEV";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EINVAL: return "EINVAL";
    case EMFILE: return "EMFILE";
    default: return "EUNKNOWN";
  }
}

// Throws an Error like Node's system errors: message "<syscall> <detail>: <strerror>",
// with code, errno (negative, as libuv reports it) and syscall properties.
void throw_errno(napi_env env, int err, const char* syscall, const char* detail) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s %s: %s (%s)", syscall, detail, strerror(err), errno_name(err));
  napi_value js_msg, js_code, error, js_errno, js_syscall;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &js_msg) != napi_ok ||
      napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &js_code) != napi_ok ||
      napi_create_error(env, js_code, js_msg, &error) != napi_ok) {
    napi_throw_error(env, errno_name(err), msg);
    return;
  }
  napi_create_int32(env, -err, &js_errno);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &js_syscall);
  napi_set_named_property(env, error, "errno", js_errno);
  napi_set_named_property(env, error, "syscall", js_syscall);
  napi_throw(env, error);
}

// Reads opts[key] as a boolean; an absent or undefined key gives `fallback`.
static bool get_bool_option(napi_env env, napi_value opts, const char* key, bool fallback, bool* ok) {
  *ok = true;
  bool has = false;
  if (napi_has_named_property(env, opts, key, &has) != napi_ok || !has) return fallback;
  napi_value v;
  napi_valuetype t;
  if (napi_get_named_property(env, opts, key, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) {
    *ok = false;
    return fallback;
  }
  if (t == napi_undefined) return fallback;
  bool result = fallback;
  if (t != napi_boolean || napi_get_value_bool(env, v, &result) != napi_ok) {
    char msg[128];
    snprintf(msg, sizeof msg, "udpSocketOnDevice: option %s must be a boolean", key);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    *ok = false;
  }
  return result;
}

static bool set_int_option(napi_env env, int fd, int level, int name, int value, const char* label) {
  if (setsockopt(fd, level, name, &value, sizeof value) == 0) return true;
  throw_errno(env, errno, "setsockopt", label);
  return false;
}

bool get_ifname(napi_env env, napi_value v, char out[IFNAMSIZ + 1], const char* fn) {
  char msg[96];
  napi_valuetype t;
  if (v == NULL || napi_typeof(env, v, &t) != napi_ok || t != napi_string) {
    snprintf(msg, sizeof msg, "%s: ifname must be a string", fn);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, out, IFNAMSIZ + 1, &len) != napi_ok) {
    throw_napi_failure(env, "napi_get_value_string_utf8");
    return false;
  }
  if (len == 0 || len >= IFNAMSIZ) {
    snprintf(msg, sizeof msg, "%s: ifname must be 1 to 15 bytes long", fn);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  return true;
}

static napi_value udp_socket_on_device(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));

  napi_valuetype t;
  char ifname[IFNAMSIZ + 1];
  if (!get_ifname(env, argc >= 2 ? argv[0] : NULL, ifname, "udpSocketOnDevice")) return NULL;

  double port_d;
  if (napi_typeof(env, argv[1], &t) != napi_ok || t != napi_number) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "udpSocketOnDevice: port must be a number");
    return NULL;
  }
  CHECK_NAPI(env, napi_get_value_double(env, argv[1], &port_d));
  if (!(port_d >= 0 && port_d <= 65535) || port_d != (double)(int)port_d) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE",
                           "udpSocketOnDevice: port must be an integer from 0 to 65535");
    return NULL;
  }
  int port = (int)port_d;

  bool broadcast = false, reuse_addr = false, ok = true;
  char address[INET_ADDRSTRLEN] = "0.0.0.0";
  if (argc >= 3 && napi_typeof(env, argv[2], &t) == napi_ok && t != napi_undefined) {
    if (t != napi_object) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "udpSocketOnDevice: opts must be an object");
      return NULL;
    }
    broadcast = get_bool_option(env, argv[2], "broadcast", false, &ok);
    if (!ok) return NULL;
    reuse_addr = get_bool_option(env, argv[2], "reuseAddr", false, &ok);
    if (!ok) return NULL;
    bool has = false;
    CHECK_NAPI(env, napi_has_named_property(env, argv[2], "address", &has));
    if (has) {
      napi_value v;
      CHECK_NAPI(env, napi_get_named_property(env, argv[2], "address", &v));
      CHECK_NAPI(env, napi_typeof(env, v, &t));
      if (t != napi_undefined) {
        size_t len = 0;
        if (t != napi_string) {
          napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "udpSocketOnDevice: address must be a string");
          return NULL;
        }
        CHECK_NAPI(env, napi_get_value_string_utf8(env, v, address, sizeof address, &len));
      }
    }
  }
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, address, &sin.sin_addr) != 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE",
                          "udpSocketOnDevice: address must be a dotted IPv4 address");
    return NULL;
  }

  // Blocking is fine: libuv's uv_udp_open makes the fd non-blocking itself.
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, errno, "socket", "AF_INET SOCK_DGRAM");
    return NULL;
  }
  char label[64];
  snprintf(label, sizeof label, "SO_BINDTODEVICE %s", ifname);
  if ((reuse_addr && !set_int_option(env, fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR")) ||
      (broadcast && !set_int_option(env, fd, SOL_SOCKET, SO_BROADCAST, 1, "SO_BROADCAST")) ||
      !set_int_option(env, fd, IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO")) {
    close(fd);
    return NULL;
  }
  // The device must be set before bind(): two sockets on one port only stop
  // conflicting once each is tied to its own device.
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname)) != 0) {
    int err = errno;
    close(fd);
    throw_errno(env, err, "setsockopt", label);
    return NULL;
  }
  if (bind(fd, (struct sockaddr*)&sin, sizeof sin) != 0) {
    int err = errno;
    close(fd);
    char where[96];
    snprintf(where, sizeof where, "%s:%d on %s", address, port, ifname);
    throw_errno(env, err, "bind", where);
    return NULL;
  }

  napi_value result;
  if (napi_create_int32(env, fd, &result) != napi_ok) {
    close(fd);
    throw_napi_failure(env, "napi_create_int32");
    return NULL;
  }
  return result;
}

static napi_value close_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype t;
  int32_t fd = -1;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_number ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "closeFd: fd must be a non-negative integer");
    return NULL;
  }
  if (close(fd) != 0) {
    char detail[32];
    snprintf(detail, sizeof detail, "fd %d", fd);
    throw_errno(env, errno, "close", detail);
    return NULL;
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"udpSocketOnDevice", NULL, udp_socket_on_device, NULL, NULL, NULL, napi_enumerable, NULL},
      {"closeFd", NULL, close_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"icmp6SocketOnDevice", NULL, icmp6_socket_on_device, NULL, NULL, NULL, napi_enumerable, NULL},
      {"icmp6Send", NULL, icmp6_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"icmp6Receive", NULL, icmp6_receive, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK_NAPI(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
