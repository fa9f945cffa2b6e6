// Shared between the addon's source files.
#ifndef KABOOT_NATIVE_H
#define KABOOT_NATIVE_H

#include <node_api.h>

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

napi_value icmp6_socket_on_device(napi_env env, napi_callback_info info);
napi_value icmp6_send(napi_env env, napi_callback_info info);
napi_value icmp6_receive(napi_env env, napi_callback_info info);

#endif
