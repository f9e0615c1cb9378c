#pragma once
// Private to src/core/mqtt: the C callbacks libmosquitto and libevent call,
// each forwarding to the Client. All run on the loop thread, libmosquitto's
// inside its loop_read / loop_write / loop_misc / disconnect / connect calls;
// while a worker connects a handle (connect_worker.hpp) its userdata is the
// worker's job and none of these is called for it.

#include <event2/util.h>
#include <mosquitto.h>

#include <cerrno>
#include <string>

#include "boxgate/mqtt/client.hpp"

namespace boxgate::mqtt {

struct Client::Callbacks {
  static Client& self(void* client) { return *static_cast<Client*>(client); }

  static void connack(mosquitto*, void* client, int reason, int flags, const mosquitto_property*) {
    self(client).on_connack(reason, flags);
  }
  static void suback(mosquitto*, void* client, int mid, int count, const int* granted, const mosquitto_property*) {
    self(client).on_suback(mid, count, granted);
  }
  static void published(mosquitto*, void* client, int mid, int reason, const mosquitto_property*) {
    self(client).on_published(mid, reason);
  }
  static void message(mosquitto*, void* client, const mosquitto_message* message,
                      const mosquitto_property* properties) {
    if (message) self(client).on_message(*message, properties);
  }
  static void disconnected(mosquitto*, void* client, int rc, const mosquitto_property*) {
    int saved_errno = errno;  // the failed read or write's, when rc is MOSQ_ERR_ERRNO
    self(client).on_disconnected(rc, saved_errno);
  }
  static void library_log(mosquitto*, void* client, int level, const char* line);
  // OpenSSL's PEM passphrase callback (through mosquitto_tls_set): `handle`
  // is the libmosquitto handle, whose userdata is the Client.
  static int key_password(char* buf, int size, int rwflag, void* handle);

  static void readable(evutil_socket_t, short, void* client) { self(client).on_readable(); }
  static void writable(evutil_socket_t, short, void* client) { self(client).on_writable(); }
  // The connect worker's pipe is readable: it is done (connect_worker.hpp).
  static void connect_done(evutil_socket_t, short, void* client) { self(client).on_connect_done(); }

  // A libmosquitto result (or the reason code of a broker's DISCONNECT) in words.
  static std::string describe(int rc, int saved_errno);
};

}  // namespace boxgate::mqtt
