// Shared between the addon's source files.
#ifndef KABOOT_NATIVE_H
#define KABOOT_NATIVE_H

#include <net/if.h>
#include <node_api.h>
#include <stdbool.h>

#define CHECK_NAPI(env, call)                                       \
  do {                                                              \
    if ((call) != napi_ok) {                                        \
      throw_napi_failure((env), #call);                             \
      return NULL;                                                  \
    }                                                               \
  } while (0)

// Throws "kaboot native: <what> failed: <N-API message>" unless an exception is pending.
void throw_napi_failure(napi_env env, const char* what);
// Throws an Error like Node's system errors (code, negative errno, syscall).
void throw_errno(napi_env env, int err, const char* syscall, const char* detail);
// Reads an interface name argument into out (NUL-terminated); v NULL when it is missing.
// Throws "<fn>: ifname must be a string" or "... must be 1 to 15 bytes long" and returns false.
bool get_ifname(napi_env env, napi_value v, char out[IFNAMSIZ + 1], const char* fn);

napi_value icmp6_socket_on_device(napi_env env, napi_callback_info info);
napi_value icmp6_send(napi_env env, napi_callback_info info);
napi_value icmp6_receive(napi_env env, napi_callback_info info);

#endif
