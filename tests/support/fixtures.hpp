#pragma once
// Everything in boxgate_test_support in one include. See each header for who
// may call it; every child process is stopped in its owner's destructor.

#include "support/daemons.hpp"
#include "support/http.hpp"
#include "support/mosquitto.hpp"
#include "support/mqtt_probe.hpp"
#include "support/net.hpp"
#include "support/process.hpp"
#include "support/redis.hpp"
#include "support/secure_mosquitto.hpp"
#include "support/tempdir.hpp"
#include "support/throttle_proxy.hpp"
