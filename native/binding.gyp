{
  "targets": [
    {
      "target_name": "kaboot_native",
      "sources": ["src/udp_device_socket.c", "src/icmp6_socket.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
