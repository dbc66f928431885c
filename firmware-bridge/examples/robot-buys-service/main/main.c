/*
 * Robot buys a service (and sells one).
 *
 * The delivery robot pays a charging station: it fetches the station's invoice over HTTP, checks
 * its `balance`, and pays with `pay` {"invoice"}. If an answer is lost, it retries with the same
 * idempotency key (a new counter each time): the gateway pays at most once and returns the first
 * answer. After each delivery it bills the recipient with `invoice` {"amountMsat", "description"}
 * and shows the payment request (log / QR display). A signed `stop` event halts the robot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cJSON.h"
#include "coulomb_esp.h"
#include "esp_http_client.h"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

static const char *TAG = "robot";

#define TIMEOUT_MS 30000 /* a Lightning payment can take a few seconds */

static volatile bool halted;

static void on_event(const coulomb_event *ev, void *arg) {
  if (ev->type_len == 4 && memcmp(ev->type, "stop", 4) == 0) {
    halted = true; /* motors_stop(); */
    ESP_LOGW(TAG, "stop received: halting");
  }
}

/* GET the station's invoice (text, or JSON {"invoice": ...}) into out. */
static bool fetch_invoice(char *out, size_t cap) {
  esp_http_client_config_t cfg = {.url = CONFIG_ROBOT_STATION_URL, .timeout_ms = 10000};
  esp_http_client_handle_t http = esp_http_client_init(&cfg);
  int n = -1;
  if (http != NULL && esp_http_client_open(http, 0) == ESP_OK && esp_http_client_fetch_headers(http) >= 0 &&
      esp_http_client_get_status_code(http) == 200)
    n = esp_http_client_read_response(http, out, (int)cap - 1);
  esp_http_client_cleanup(http);
  if (n <= 0) return false;
  out[n] = '\0';
  if (out[0] == '{') {
    cJSON *j = cJSON_Parse(out);
    const char *inv = cJSON_GetStringValue(cJSON_GetObjectItem(j, "invoice"));
    bool ok = inv != NULL && strlen(inv) < cap;
    if (ok) memmove(out, inv, strlen(inv) + 1);
    cJSON_Delete(j);
    if (!ok) return false;
  }
  out[strcspn(out, " \r\n")] = '\0';
  /* A BOLT11 invoice is bech32: letters and digits only (so it needs no JSON escaping). */
  return strncmp(out, "ln", 2) == 0 &&
         strspn(out, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == strlen(out);
}

static long long available_msat(void) {
  char body[256];
  bool ok = false;
  long long v = -1;
  if (coulomb_esp_call("balance", "", NULL, TIMEOUT_MS, &ok, body, sizeof body) == ESP_OK && ok) {
    cJSON *j = cJSON_Parse(body);
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(j, "availableMsat"));
    if (s != NULL) v = atoll(s);
    cJSON_Delete(j);
  }
  return v;
}

static bool buy_charge(void) {
  char invoice[1024], params[1100], key[40], body[1024];
  bool ok = false, answered = false;
  int attempt;
  if (!fetch_invoice(invoice, sizeof invoice)) {
    ESP_LOGW(TAG, "no invoice from the station");
    return false;
  }
  if (available_msat() < CONFIG_ROBOT_MAX_PRICE_MSAT) {
    ESP_LOGW(TAG, "not enough funds for a charge");
    return false;
  }
  /* The gateway's policy (quotas, allowed payees) decides too: a refusal comes back as ok=false. */
  snprintf(params, sizeof params, "{\"invoice\":\"%s\"}", invoice);
  coulomb_esp_new_key("charge", key, sizeof key);
  for (attempt = 0; attempt < 3 && !answered; attempt++)
    answered = coulomb_esp_call("pay", params, key, TIMEOUT_MS, &ok, body, sizeof body) == ESP_OK;
  if (!answered) {
    ESP_LOGE(TAG, "payment outcome unknown; retry later with key %s", key);
    return false;
  }
  if (ok) {
    cJSON *j = cJSON_Parse(body);
    const char *status = cJSON_GetStringValue(cJSON_GetObjectItem(j, "status"));
    ok = status != NULL && strcmp(status, "succeeded") == 0;
    ESP_LOGI(TAG, "payment %s", body);
    cJSON_Delete(j);
  } else {
    ESP_LOGW(TAG, "payment refused: %s", body);
  }
  return ok;
}

static void bill_delivery(unsigned delivery) {
  char params[160], body[1024];
  bool ok = false;
  snprintf(params, sizeof params, "{\"amountMsat\":\"%s\",\"description\":\"delivery #%u\"}",
           CONFIG_ROBOT_DELIVERY_FEE_MSAT, delivery);
  if (coulomb_esp_call("invoice", params, NULL, TIMEOUT_MS, &ok, body, sizeof body) == ESP_OK && ok) {
    cJSON *j = cJSON_Parse(body);
    ESP_LOGI(TAG, "delivery #%u: pay %s", delivery,
             cJSON_GetStringValue(cJSON_GetObjectItem(j, "request"))); /* show as a QR code */
    cJSON_Delete(j);
  }
}

void app_main(void) {
  unsigned delivery = 0;
  ESP_ERROR_CHECK(coulomb_esp_start(on_event, NULL));
  ESP_LOGI(TAG, "robot %s", coulomb_esp_device_id());
  while (!halted) {
    /* drive_to_station(); */
    if (buy_charge()) ESP_LOGI(TAG, "charging"); /* station_dock(); */
    /* drive_and_deliver(); */
    vTaskDelay(pdMS_TO_TICKS(60000));
    if (halted) break;
    bill_delivery(++delivery);
  }
  ESP_LOGW(TAG, "halted by the operator");
}
