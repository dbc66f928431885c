/*
 * Sensor sells its reading.
 *
 * Every SENSOR_PERIOD_SECONDS the sensor offers a fresh reading for sale (`offer.sell`); the
 * gateway answers with an invoice (paymentHash, request) that buyers find through the gateway.
 * When a buyer pays, the gateway pushes a signed `sold` event; the sensor then hands the reading
 * over with `sale.deliver` and the gateway releases it to the buyer against the payment proof.
 * `balance` shows what the sensor has earned.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cJSON.h"
#include "coulomb_esp.h"
#include "esp_log.h"
#include "esp_random.h"
#include "freertos/FreeRTOS.h"
#include "freertos/semphr.h"
#include "freertos/task.h"

static const char *TAG = "sensor";

#define OFFERS 8
#define TIMEOUT_MS 15000

/* Readings on offer, by payment hash (a small ring: the oldest offer is forgotten first). */
static struct {
  char payment_hash[65];
  char reading[32];
} offers[OFFERS];
static unsigned next_offer;
static SemaphoreHandle_t offers_lock;

/* Replace with your driver (e.g. the temperature_sensor driver on ESP32-S2/S3/C3, or an SHT3x). */
static float read_temperature(void) { return 20.0f + (float)(esp_random() % 60) / 10.0f; }

static void offer_reading(void) {
  char reading[32], params[160], body[1024];
  bool ok = false;
  cJSON *res;
  const cJSON *hash;
  snprintf(reading, sizeof reading, "%.1f \xc2\xb0" "C", read_temperature());
  snprintf(params, sizeof params,
           "{\"reading\":\"%s\",\"priceMsat\":\"%s\",\"description\":\"temperature reading\"}",
           reading, CONFIG_SENSOR_PRICE_MSAT);
  if (coulomb_esp_call("offer.sell", params, NULL, TIMEOUT_MS, &ok, body, sizeof body) != ESP_OK || !ok) {
    ESP_LOGW(TAG, "offer not accepted: %s", ok ? "" : body);
    return;
  }
  res = cJSON_Parse(body);
  hash = cJSON_GetObjectItem(res, "paymentHash");
  if (cJSON_IsString(hash) && strlen(hash->valuestring) == 64) {
    xSemaphoreTake(offers_lock, portMAX_DELAY);
    strcpy(offers[next_offer].payment_hash, hash->valuestring);
    strcpy(offers[next_offer].reading, reading);
    next_offer = (next_offer + 1) % OFFERS;
    xSemaphoreGive(offers_lock);
    ESP_LOGI(TAG, "offered %s, invoice %s", reading,
             cJSON_GetStringValue(cJSON_GetObjectItem(res, "request")));
  }
  cJSON_Delete(res);
}

/* `sold` {paymentHash, priceMsat, exp}: deliver the reading that was paid for. */
static void deliver(const char *payment_hash) {
  char reading[32] = "", params[200], key[40], body[512];
  bool ok = false;
  int i, attempt;
  xSemaphoreTake(offers_lock, portMAX_DELAY);
  for (i = 0; i < OFFERS; i++)
    if (strcmp(offers[i].payment_hash, payment_hash) == 0) strcpy(reading, offers[i].reading);
  xSemaphoreGive(offers_lock);
  if (reading[0] == '\0') {
    ESP_LOGW(TAG, "sold %s, but that offer is forgotten", payment_hash);
    return;
  }
  snprintf(params, sizeof params, "{\"paymentHash\":\"%s\",\"reading\":\"%s\"}", payment_hash, reading);
  coulomb_esp_new_key("deliver", key, sizeof key);
  /* Retries reuse the idempotency key: the gateway answers a retry with the first answer. */
  for (attempt = 0; attempt < 3; attempt++)
    if (coulomb_esp_call("sale.deliver", params, key, TIMEOUT_MS, &ok, body, sizeof body) == ESP_OK) break;
  ESP_LOGI(TAG, "delivery of %s: %s", reading, ok ? "done" : body);
}

static void on_event(const coulomb_event *ev, void *arg) {
  cJSON *b;
  const cJSON *hash, *exp;
  if (ev->type_len != 4 || memcmp(ev->type, "sold", 4) != 0) return;
  b = cJSON_ParseWithLength(ev->body, ev->body_len);
  hash = cJSON_GetObjectItem(b, "paymentHash");
  exp = cJSON_GetObjectItem(b, "exp");
  if (cJSON_IsNumber(exp) && (double)time(NULL) > exp->valuedouble)
    ESP_LOGW(TAG, "sold event expired");
  else if (cJSON_IsString(hash))
    deliver(hash->valuestring);
  cJSON_Delete(b);
}

void app_main(void) {
  char body[256];
  bool ok;
  offers_lock = xSemaphoreCreateMutex();
  ESP_ERROR_CHECK(coulomb_esp_start(on_event, NULL));
  ESP_LOGI(TAG, "sensor %s selling readings at %s msat", coulomb_esp_device_id(),
           CONFIG_SENSOR_PRICE_MSAT);
  for (;;) {
    offer_reading();
    if (coulomb_esp_call("balance", "", NULL, TIMEOUT_MS, &ok, body, sizeof body) == ESP_OK && ok)
      ESP_LOGI(TAG, "balance %s", body);
    vTaskDelay(pdMS_TO_TICKS(CONFIG_SENSOR_PERIOD_SECONDS * 1000));
  }
}
