/*
 * coulomb_esp: NVS + Wi-Fi + SNTP + MQTT glue for the ESP32 examples (see coulomb_esp.h).
 *
 * Threads: the MQTT task only copies incoming messages (reassembling fragments) into two FreeRTOS
 * message buffers; responses are verified in the task that called coulomb_esp_call(), events in
 * the coulomb_esp event task. Signing and verification need about 6 KiB of stack on top of the
 * caller's own use (see firmware-bridge/README.md), hence the 12 KiB tasks.
 */
#include "coulomb_esp.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "esp_event.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "esp_netif_sntp.h"
#include "esp_random.h"
#include "esp_wifi.h"
#include "freertos/FreeRTOS.h"
#include "freertos/event_groups.h"
#include "freertos/message_buffer.h"
#include "freertos/semphr.h"
#include "freertos/task.h"
#include "mqtt_client.h"
#include "nvs.h"
#include "nvs_flash.h"
#include "secp256k1_preallocated.h"

static const char *TAG = "coulomb";

#define MAX_ENVELOPE CONFIG_COULOMB_MAX_ENVELOPE_BYTES
#define COUNTER_BLOCK 64 /* counters reserved per NVS write (flash wear vs. counters skipped) */
#define NET_UP BIT0
#define MQTT_UP BIT1
#define EVENT_TASK_STACK 12288

/* The secp256k1 context: built once in this buffer, randomized with hardware randomness. */
static union {
  unsigned char bytes[512];
  uint64_t align_u64;
  long double align_ld;
  void *align_ptr;
} ctx_mem;
static secp256k1_context *ctx;

static uint8_t secret_key[32], gateway_id[32], device_id[32];
/* The key pair, computed once at start: each request is signed from it (coulomb_sign_request_keypair),
 * with aux randomness drawn by the library from esp_fill_random() (the coulomb_device component's
 * coulomb_platform_random). */
static secp256k1_keypair keypair;
static char device_hex[65];
static char topic_req[96], topic_res[96], topic_evt[96];

static nvs_handle_t nvs;
static uint64_t next_counter, reserved_counter, last_event_seq;

static EventGroupHandle_t state;
static esp_mqtt_client_handle_t mqtt;
static SemaphoreHandle_t call_lock;
static MessageBufferHandle_t responses, events;
static coulomb_esp_event_cb event_cb;
static void *event_cb_arg;

/* One incoming MQTT message being reassembled (MQTT task only). */
static char incoming[MAX_ENVELOPE];
static MessageBufferHandle_t incoming_to;
static bool incoming_dropped;

static char request_json[MAX_ENVELOPE];      /* under call_lock */
static char response_json[MAX_ENVELOPE + 1]; /* under call_lock */
static char event_json[MAX_ENVELOPE + 1];    /* event task */

/* ---- NVS: keys, the request counter, the last event processed ---- */

static esp_err_t load_key(const char *name, const char *fallback_hex, uint8_t out[32]) {
  size_t len = 32;
  if (nvs_get_blob(nvs, name, out, &len) == ESP_OK && len == 32) return ESP_OK;
  if (fallback_hex[0] != '\0' &&
      coulomb_hex_decode(fallback_hex, strlen(fallback_hex), out, 32) == COULOMB_OK) {
    ESP_LOGW(TAG, "%s taken from sdkconfig: development only, provision it into NVS", name);
    return ESP_OK;
  }
  ESP_LOGE(TAG, "no key \"%s\": provision NVS namespace \"coulomb\" (32-byte blob)", name);
  return ESP_ERR_NOT_FOUND;
}

/* A counter is only ever sent after a value at least as high is committed to flash, so a reboot
 * can never reuse one (the gateway would answer REPLAYED). Blocks of COUNTER_BLOCK save flash. */
static esp_err_t take_counter(uint64_t *out) {
  if (next_counter > reserved_counter) {
    uint64_t reserve = next_counter + COUNTER_BLOCK - 1;
    esp_err_t err = nvs_set_u64(nvs, "ctr", reserve);
    if (err == ESP_OK) err = nvs_commit(nvs);
    if (err != ESP_OK) return err;
    reserved_counter = reserve;
  }
  *out = next_counter++;
  return ESP_OK;
}

/* ---- Wi-Fi and clock ---- */

static void on_net_event(void *arg, esp_event_base_t base, int32_t id, void *data) {
  if (base == WIFI_EVENT && (id == WIFI_EVENT_STA_START || id == WIFI_EVENT_STA_DISCONNECTED)) {
    xEventGroupClearBits(state, NET_UP);
    esp_wifi_connect();
  } else if (base == IP_EVENT && id == IP_EVENT_STA_GOT_IP) {
    xEventGroupSetBits(state, NET_UP);
  }
}

static void wifi_start(void) {
  wifi_init_config_t init = WIFI_INIT_CONFIG_DEFAULT();
  wifi_config_t cfg = {0};
  ESP_ERROR_CHECK(esp_netif_init());
  ESP_ERROR_CHECK(esp_event_loop_create_default());
  esp_netif_create_default_wifi_sta();
  ESP_ERROR_CHECK(esp_wifi_init(&init));
  ESP_ERROR_CHECK(esp_event_handler_register(WIFI_EVENT, ESP_EVENT_ANY_ID, on_net_event, NULL));
  ESP_ERROR_CHECK(esp_event_handler_register(IP_EVENT, IP_EVENT_STA_GOT_IP, on_net_event, NULL));
  strlcpy((char *)cfg.sta.ssid, CONFIG_COULOMB_WIFI_SSID, sizeof cfg.sta.ssid);
  strlcpy((char *)cfg.sta.password, CONFIG_COULOMB_WIFI_PASSWORD, sizeof cfg.sta.password);
  ESP_ERROR_CHECK(esp_wifi_set_mode(WIFI_MODE_STA));
  ESP_ERROR_CHECK(esp_wifi_set_config(WIFI_IF_STA, &cfg));
  ESP_ERROR_CHECK(esp_wifi_start());
  ESP_LOGI(TAG, "connecting to %s", CONFIG_COULOMB_WIFI_SSID);
  xEventGroupWaitBits(state, NET_UP, pdFALSE, pdTRUE, portMAX_DELAY);
}

/* The gateway refuses requests more than 300 s off its clock. */
static esp_err_t clock_sync(void) {
  esp_sntp_config_t cfg = ESP_NETIF_SNTP_DEFAULT_CONFIG(CONFIG_COULOMB_SNTP_SERVER);
  esp_netif_sntp_init(&cfg);
  if (esp_netif_sntp_sync_wait(pdMS_TO_TICKS(30000)) != ESP_OK) {
    ESP_LOGE(TAG, "no time from %s", CONFIG_COULOMB_SNTP_SERVER);
    return ESP_ERR_TIMEOUT;
  }
  return ESP_OK;
}

/* ---- MQTT ---- */

static bool topic_is(const esp_mqtt_event_handle_t e, const char *topic) {
  return e->topic_len == (int)strlen(topic) && memcmp(e->topic, topic, (size_t)e->topic_len) == 0;
}

/* The MQTT connect token (PROTOCOL.md): username = now, password = signature over (id, now).
 * The broker accepts it for 300 s, so it is made afresh before every (re)connect. */
static char mqtt_user[21], mqtt_pass[129];

static esp_err_t fresh_credentials(void) {
  char client_hex[65];
  if (coulomb_mqtt_credentials(ctx, secret_key, NULL, (uint64_t)time(NULL), client_hex, mqtt_user,
                               mqtt_pass) != COULOMB_OK)
    return ESP_FAIL;
  return ESP_OK;
}

static void on_mqtt_event(void *arg, esp_event_base_t base, int32_t id, void *data) {
  esp_mqtt_event_handle_t e = (esp_mqtt_event_handle_t)data;
  switch ((esp_mqtt_event_id_t)id) {
    case MQTT_EVENT_BEFORE_CONNECT:
      if (fresh_credentials() == ESP_OK) {
        esp_mqtt_client_config_t update = {0};
        update.credentials.username = mqtt_user;
        update.credentials.authentication.password = mqtt_pass;
        esp_mqtt_set_config(mqtt, &update);
      }
      break;
    case MQTT_EVENT_CONNECTED:
      esp_mqtt_client_subscribe(mqtt, topic_res, 1);
      esp_mqtt_client_subscribe(mqtt, topic_evt, 1);
      xEventGroupSetBits(state, MQTT_UP);
      ESP_LOGI(TAG, "MQTT session up");
      break;
    case MQTT_EVENT_DISCONNECTED:
      xEventGroupClearBits(state, MQTT_UP);
      ESP_LOGW(TAG, "MQTT session down (reconnecting)");
      break;
    case MQTT_EVENT_DATA:
      if (e->current_data_offset == 0) { /* first fragment: the topic is only set here */
        incoming_to = topic_is(e, topic_res) ? responses : topic_is(e, topic_evt) ? events : NULL;
        incoming_dropped = e->total_data_len > MAX_ENVELOPE;
        if (incoming_dropped)
          ESP_LOGW(TAG, "dropping a %d-byte message (raise COULOMB_MAX_ENVELOPE_BYTES)", e->total_data_len);
      }
      if (incoming_to == NULL || incoming_dropped || e->current_data_offset + e->data_len > MAX_ENVELOPE)
        break;
      memcpy(incoming + e->current_data_offset, e->data, (size_t)e->data_len);
      if (e->current_data_offset + e->data_len == e->total_data_len &&
          xMessageBufferSend(incoming_to, incoming, (size_t)e->total_data_len, 0) == 0)
        ESP_LOGW(TAG, "inbox full: message dropped");
      break;
    default:
      break;
  }
}

/* ---- events ---- */

static void event_task(void *unused) {
  for (;;) {
    coulomb_event ev;
    coulomb_err err;
    size_t n = xMessageBufferReceive(events, event_json, MAX_ENVELOPE, portMAX_DELAY);
    if (n == 0) continue;
    err = coulomb_open_event(ctx, event_json, n, gateway_id, device_id, last_event_seq, &ev);
    if (err != COULOMB_OK) {
      ESP_LOGW(TAG, "event discarded: %s", coulomb_strerror(err));
      continue;
    }
    /* At most once: remember n before acting (actuations are acknowledged separately). */
    last_event_seq = ev.seq;
    if (nvs_set_u64(nvs, "evt_n", ev.seq) != ESP_OK || nvs_commit(nvs) != ESP_OK)
      ESP_LOGW(TAG, "could not persist the event sequence number");
    ESP_LOGI(TAG, "event #%" PRIu64 " %.*s %s", ev.seq, (int)ev.type_len, ev.type, ev.body);
    if (event_cb != NULL) event_cb(&ev, event_cb_arg);
  }
}

/* ---- public ---- */

esp_err_t coulomb_esp_start(coulomb_esp_event_cb on_event, void *arg) {
  esp_mqtt_client_config_t mqtt_cfg = {0};
  uint8_t seed[32];
  uint64_t reserved = 0;
  esp_err_t err = nvs_flash_init();
  if (err != ESP_OK) {
    /* Never erase here: the key and the counter live in NVS. */
    ESP_LOGE(TAG, "NVS: %s", esp_err_to_name(err));
    return err;
  }
  ESP_ERROR_CHECK(nvs_open("coulomb", NVS_READWRITE, &nvs));
  if (load_key("sk", CONFIG_COULOMB_SECRET_KEY_HEX, secret_key) != ESP_OK ||
      load_key("gw", CONFIG_COULOMB_GATEWAY_ID_HEX, gateway_id) != ESP_OK)
    return ESP_ERR_NOT_FOUND;
  nvs_get_u64(nvs, "ctr", &reserved);
  next_counter = reserved + 1;
  reserved_counter = reserved;
  nvs_get_u64(nvs, "evt_n", &last_event_seq);

  state = xEventGroupCreate();
  call_lock = xSemaphoreCreateMutex();
  responses = xMessageBufferCreate(2 * (MAX_ENVELOPE + sizeof(size_t)));
  events = xMessageBufferCreate(2 * (MAX_ENVELOPE + sizeof(size_t)));
  if (state == NULL || call_lock == NULL || responses == NULL || events == NULL) return ESP_ERR_NO_MEM;

  wifi_start();
  if (clock_sync() != ESP_OK) return ESP_ERR_TIMEOUT;

  /* With the radio on, esp_fill_random() is a true RNG: blind the context with it (and every
   * signature's aux randomness comes from it too, after this point). */
  esp_fill_random(seed, sizeof seed);
  ctx = coulomb_context_create(ctx_mem.bytes, sizeof ctx_mem.bytes, seed);
  if (ctx == NULL) return ESP_ERR_NO_MEM;
  if (coulomb_device_id(ctx, secret_key, device_id) != COULOMB_OK ||
      coulomb_keypair_create(ctx, secret_key, &keypair) != COULOMB_OK) {
    ESP_LOGE(TAG, "the secret key is not a valid secp256k1 key");
    return ESP_ERR_INVALID_STATE;
  }
  coulomb_hex_encode(device_id, 32, device_hex);
  snprintf(topic_req, sizeof topic_req, "coulomb/d/%s/req", device_hex);
  snprintf(topic_res, sizeof topic_res, "coulomb/d/%s/res", device_hex);
  snprintf(topic_evt, sizeof topic_evt, "coulomb/d/%s/evt", device_hex);
  ESP_LOGI(TAG, "device id %s, next counter %" PRIu64 ", last event %" PRIu64, device_hex,
           next_counter, last_event_seq);

  event_cb = on_event;
  event_cb_arg = arg;
  if (xTaskCreate(event_task, "coulomb_evt", EVENT_TASK_STACK, NULL, 5, NULL) != pdPASS)
    return ESP_ERR_NO_MEM;

  mqtt_cfg.broker.address.uri = CONFIG_COULOMB_MQTT_URI;
  mqtt_cfg.credentials.client_id = device_hex;       /* the gateway's broker requires it */
  if (fresh_credentials() != ESP_OK) return ESP_ERR_INVALID_STATE;
  mqtt_cfg.credentials.username = mqtt_user;
  mqtt_cfg.credentials.authentication.password = mqtt_pass;
  mqtt_cfg.session.disable_clean_session = true;     /* keep QoS 1 messages while offline */
  mqtt_cfg.session.keepalive = 60;
  mqtt = esp_mqtt_client_init(&mqtt_cfg);
  if (mqtt == NULL) return ESP_ERR_NO_MEM;
  ESP_ERROR_CHECK(esp_mqtt_client_register_event(mqtt, ESP_EVENT_ANY_ID, on_mqtt_event, NULL));
  ESP_ERROR_CHECK(esp_mqtt_client_start(mqtt));
  xEventGroupWaitBits(state, MQTT_UP, pdFALSE, pdTRUE, portMAX_DELAY);
  return ESP_OK;
}

esp_err_t coulomb_esp_call(const char *method, const char *params, const char *idempotency_key,
                           int timeout_ms, bool *ok, char *body, size_t body_cap) {
  coulomb_request req;
  coulomb_response res;
  coulomb_err err;
  uint64_t counter;
  TickType_t deadline;
  esp_err_t result;
  int len;

  xSemaphoreTake(call_lock, portMAX_DELAY);
  if (!(xEventGroupWaitBits(state, MQTT_UP, pdFALSE, pdTRUE, pdMS_TO_TICKS(timeout_ms)) & MQTT_UP)) {
    result = ESP_ERR_TIMEOUT;
    goto out;
  }
  if ((result = take_counter(&counter)) != ESP_OK) goto out;
  /* aux32 NULL: the library draws fresh randomness from esp_fill_random() (a synthetic nonce). */
  err = coulomb_sign_request_keypair(ctx, &keypair, NULL, counter, (uint64_t)time(NULL), method,
                                     params, idempotency_key, &req);
  if (err != COULOMB_OK) {
    ESP_LOGE(TAG, "%s: cannot sign: %s", method, coulomb_strerror(err));
    result = ESP_ERR_INVALID_ARG;
    goto out;
  }
  len = coulomb_request_to_json(&req, request_json, sizeof request_json);
  if (len < 0) {
    ESP_LOGE(TAG, "%s: %s", method, coulomb_strerror(len));
    result = ESP_ERR_INVALID_SIZE;
    goto out;
  }
  if (esp_mqtt_client_publish(mqtt, topic_req, request_json, len, 1, 0) < 0) {
    result = ESP_FAIL;
    goto out;
  }
  ESP_LOGI(TAG, "-> #%" PRIu64 " %s %s", counter, method, params);

  result = ESP_ERR_TIMEOUT;
  deadline = xTaskGetTickCount() + pdMS_TO_TICKS(timeout_ms);
  for (;;) {
    TickType_t now = xTaskGetTickCount();
    size_t n;
    if ((int32_t)(deadline - now) <= 0) break;
    n = xMessageBufferReceive(responses, response_json, MAX_ENVELOPE, deadline - now);
    if (n == 0) continue;
    if (strncmp(response_json, "{\"error\"", 8) == 0) {
      /* Unsigned: the gateway could not attribute the envelope. A hint, never trusted. */
      response_json[n] = '\0';
      ESP_LOGW(TAG, "%s: unsigned gateway error %s", method, response_json);
      continue;
    }
    err = coulomb_open_response(ctx, response_json, n, gateway_id, device_id, counter, &res);
    if (err == COULOMB_ERR_WRONG_COUNTER) continue; /* a late answer to an earlier request */
    if (err != COULOMB_OK) {
      ESP_LOGW(TAG, "%s: answer discarded: %s", method, coulomb_strerror(err));
      continue;
    }
    if (res.body_len + 1 > body_cap) {
      result = ESP_ERR_INVALID_SIZE;
      break;
    }
    memcpy(body, res.body, res.body_len + 1);
    *ok = res.ok != 0;
    ESP_LOGI(TAG, "<- #%" PRIu64 " ok=%d %s", counter, res.ok, res.body);
    result = ESP_OK;
    break;
  }
out:
  xSemaphoreGive(call_lock);
  return result;
}

const char *coulomb_esp_device_id(void) { return device_hex; }

void coulomb_esp_new_key(const char *prefix, char *out, size_t cap) {
  uint8_t r[8];
  char hex[17];
  esp_fill_random(r, sizeof r);
  coulomb_hex_encode(r, sizeof r, hex);
  snprintf(out, cap, "%s-%s", prefix, hex);
}
