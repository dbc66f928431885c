/*
 * Pay-to-actuate switch.
 *
 * A buyer asks the gateway to actuate the switch and pays a hold invoice. Once the payment is
 * locked in, the gateway pushes a signed `actuate` event {"actuationId", "command", "exp"}; the
 * switch acts and confirms with `actuate.ack` {"actuationId"}, which settles the payment. If the
 * switch does not act (unknown command, event expired), it does not acknowledge and the buyer is
 * refunded when the hold invoice times out. A signed `stop` event switches the relay off.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cJSON.h"
#include "coulomb_esp.h"
#include "driver/gpio.h"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

static const char *TAG = "switch";

#define TIMEOUT_MS 15000

static volatile TickType_t off_at; /* 0: stays as it is */

static void relay(bool on) {
  gpio_set_level(CONFIG_SWITCH_RELAY_GPIO, on ? 1 : 0);
  ESP_LOGI(TAG, "relay %s", on ? "ON" : "off");
}

static bool act(const char *command) {
  if (strcmp(command, "on") == 0 || strcmp(command, "open") == 0) {
    relay(true);
    off_at = CONFIG_SWITCH_ON_SECONDS > 0
                 ? xTaskGetTickCount() + pdMS_TO_TICKS(CONFIG_SWITCH_ON_SECONDS * 1000)
                 : 0;
    return true;
  }
  if (strcmp(command, "off") == 0 || strcmp(command, "close") == 0) {
    relay(false);
    off_at = 0;
    return true;
  }
  return false;
}

static void acknowledge(const char *actuation_id) {
  char params[128], key[80], body[256];
  bool ok = false;
  int attempt;
  snprintf(params, sizeof params, "{\"actuationId\":\"%s\"}", actuation_id);
  snprintf(key, sizeof key, "ack-%s", actuation_id); /* one ack per actuation, retries included */
  for (attempt = 0; attempt < 3; attempt++)
    if (coulomb_esp_call("actuate.ack", params, key, TIMEOUT_MS, &ok, body, sizeof body) == ESP_OK) {
      ESP_LOGI(TAG, "ack %s: %s", ok ? "accepted" : "refused", body);
      return;
    }
  ESP_LOGE(TAG, "ack of %s unanswered: the gateway will refund the buyer", actuation_id);
}

static void on_event(const coulomb_event *ev, void *arg) {
  cJSON *b;
  const char *id, *command;
  const cJSON *exp;
  if (ev->type_len == 4 && memcmp(ev->type, "stop", 4) == 0) {
    relay(false);
    off_at = 0;
    return;
  }
  if (ev->type_len != 7 || memcmp(ev->type, "actuate", 7) != 0) return;
  b = cJSON_ParseWithLength(ev->body, ev->body_len);
  id = cJSON_GetStringValue(cJSON_GetObjectItem(b, "actuationId"));
  command = cJSON_GetStringValue(cJSON_GetObjectItem(b, "command"));
  exp = cJSON_GetObjectItem(b, "exp");
  /* The id goes into JSON text and an idempotency key ("ack-" + id, at most 64 characters). */
  if (id == NULL || command == NULL || strlen(id) > 60 ||
      strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:") != strlen(id)) {
    ESP_LOGW(TAG, "malformed actuate event");
  } else if (cJSON_IsNumber(exp) && (double)time(NULL) > exp->valuedouble) {
    ESP_LOGW(TAG, "actuation %s expired: not acting", id);
  } else if (!act(command)) {
    ESP_LOGW(TAG, "unknown command \"%s\": not acting", command);
  } else {
    acknowledge(id);
  }
  cJSON_Delete(b);
}

void app_main(void) {
  gpio_config_t out = {.pin_bit_mask = 1ULL << CONFIG_SWITCH_RELAY_GPIO, .mode = GPIO_MODE_OUTPUT};
  ESP_ERROR_CHECK(gpio_config(&out));
  relay(false);
  ESP_ERROR_CHECK(coulomb_esp_start(on_event, NULL));
  ESP_LOGI(TAG, "switch %s waiting for paid actuations", coulomb_esp_device_id());
  for (;;) {
    TickType_t t = off_at;
    if (t != 0 && (int32_t)(xTaskGetTickCount() - t) >= 0) {
      off_at = 0;
      relay(false);
    }
    vTaskDelay(pdMS_TO_TICKS(500));
  }
}
