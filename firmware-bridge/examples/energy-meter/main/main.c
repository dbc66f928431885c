/*
 * Energy meter on a metered stream.
 *
 * Counts the pulses of an S0 output (one pulse = one unit, e.g. 1 Wh at 1000 imp/kWh) and every
 * METER_REPORT_SECONDS reports them with `meter.report` {"streamId", "units"}; the gateway pays
 * the meter's account from the consumer's stream per unit. A report that got no answer is retried
 * with the same units and the same idempotency key (new counter), so a unit is never billed twice;
 * pulses counted meanwhile go into the next report. A signed `stop` event (the stream was stopped
 * or ran dry) opens the supply relay, and so does a report answered with state "stopped".
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cJSON.h"
#include "coulomb_esp.h"
#include "driver/gpio.h"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

static const char *TAG = "meter";

#define TIMEOUT_MS 15000

static portMUX_TYPE pulse_lock = portMUX_INITIALIZER_UNLOCKED;
static uint32_t pulses;
static volatile bool supply_on = true;

static void IRAM_ATTR on_pulse(void *arg) {
  portENTER_CRITICAL_ISR(&pulse_lock);
  pulses++;
  portEXIT_CRITICAL_ISR(&pulse_lock);
}

static uint32_t take_pulses(void) {
  uint32_t n;
  portENTER_CRITICAL(&pulse_lock);
  n = pulses;
  pulses = 0;
  portEXIT_CRITICAL(&pulse_lock);
  return n;
}

static void set_supply(bool on) {
  supply_on = on;
  gpio_set_level(CONFIG_METER_RELAY_GPIO, on ? 1 : 0);
  ESP_LOGI(TAG, "supply %s", on ? "on" : "OFF");
}

static void on_event(const coulomb_event *ev, void *arg) {
  if (ev->type_len == 4 && memcmp(ev->type, "stop", 4) == 0) set_supply(false);
}

static void gpio_setup(void) {
  gpio_config_t relay = {.pin_bit_mask = 1ULL << CONFIG_METER_RELAY_GPIO, .mode = GPIO_MODE_OUTPUT};
  gpio_config_t pulse = {.pin_bit_mask = 1ULL << CONFIG_METER_PULSE_GPIO,
                         .mode = GPIO_MODE_INPUT,
                         .pull_up_en = GPIO_PULLUP_ENABLE,
                         .intr_type = GPIO_INTR_NEGEDGE};
  ESP_ERROR_CHECK(gpio_config(&relay));
  ESP_ERROR_CHECK(gpio_config(&pulse));
  ESP_ERROR_CHECK(gpio_install_isr_service(0));
  ESP_ERROR_CHECK(gpio_isr_handler_add(CONFIG_METER_PULSE_GPIO, on_pulse, NULL));
  set_supply(true);
}

void app_main(void) {
  uint32_t pending = 0;          /* counted, not yet reported */
  uint32_t inflight_units = 0;   /* the report being (re)tried */
  char inflight_key[40] = "";
  char params[160], body[512];
  bool ok;

  gpio_setup();
  ESP_ERROR_CHECK(coulomb_esp_start(on_event, NULL));
  ESP_LOGI(TAG, "meter %s on stream %s", coulomb_esp_device_id(), CONFIG_METER_STREAM_ID);
  for (;;) {
    vTaskDelay(pdMS_TO_TICKS(CONFIG_METER_REPORT_SECONDS * 1000));
    pending += take_pulses();
    if (!supply_on) continue;
    if (inflight_units == 0) {
      if (pending == 0) continue;
      inflight_units = pending; /* a new report: new idempotency key */
      pending = 0;
      coulomb_esp_new_key("meter", inflight_key, sizeof inflight_key);
    }
    snprintf(params, sizeof params, "{\"streamId\":\"%s\",\"units\":%" PRIu32 "}",
             CONFIG_METER_STREAM_ID, inflight_units);
    if (coulomb_esp_call("meter.report", params, inflight_key, TIMEOUT_MS, &ok, body, sizeof body) != ESP_OK) {
      ESP_LOGW(TAG, "no answer; %" PRIu32 " units will be retried", inflight_units);
      continue;
    }
    inflight_units = 0;
    if (ok) {
      cJSON *res = cJSON_Parse(body);
      const char *state = cJSON_GetStringValue(cJSON_GetObjectItem(res, "state"));
      ESP_LOGI(TAG, "reported; stream %s", body);
      if (state != NULL && strcmp(state, "stopped") == 0) set_supply(false);
      cJSON_Delete(res);
    } else {
      ESP_LOGW(TAG, "report refused: %s", body); /* e.g. the stream no longer pays this meter */
      set_supply(false);
    }
  }
}
