/*
 * coulomb_esp - the glue the ESP32 examples share: NVS (keys, counter), Wi-Fi, SNTP, and the
 * MQTT transport of PROTOCOL.md (publish requests to coulomb/d/<deviceId>/req, verified responses
 * from .../res, verified events from .../evt).
 *
 * Application code, not the portable library: it uses FreeRTOS, ESP-IDF drivers and static
 * buffers; all envelope work goes through coulomb_device.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "coulomb_device.h"
#include "esp_err.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Called on the coulomb_esp event task for every event that verified (pinned gateway, this
 * device, signature) and whose n is above the last one processed; n is persisted before the call.
 * The callback may call coulomb_esp_call(). Events also carry "exp" (unix seconds) in b: after it,
 * they are not worth acting on.
 */
typedef void (*coulomb_esp_event_cb)(const coulomb_event *ev, void *arg);

/* NVS, keys, secp256k1 context, Wi-Fi, clock, MQTT session. Blocks until connected. */
esp_err_t coulomb_esp_start(coulomb_esp_event_cb on_event, void *arg);

/*
 * One request: takes the next counter (persisted first), signs method/params/idempotency_key
 * (NULL for none) from the key pair made at start, with fresh hardware randomness, publishes it (QoS 1) and waits up to
 * timeout_ms for the response that verifies for this counter. On ESP_OK, *ok is the gateway's ok
 * flag and body holds b (NUL-terminated). ESP_ERR_TIMEOUT: no verified answer in time; retry with
 * the SAME idempotency key (a new counter is used automatically) to get the first answer.
 * ESP_ERR_INVALID_SIZE: body_cap or the envelope buffer is too small. Serialized: one call at a time.
 */
esp_err_t coulomb_esp_call(const char *method, const char *params, const char *idempotency_key,
                           int timeout_ms, bool *ok, char *body, size_t body_cap);

/* This device's id, 64 lowercase hex (valid after coulomb_esp_start). */
const char *coulomb_esp_device_id(void);

/* A fresh random idempotency key "<prefix>-<16 hex>" (for one logical operation and its retries). */
void coulomb_esp_new_key(const char *prefix, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
