//! What the platform says: the clock, and the device facts the precision policy weighs (cores,
//! memory, cross-origin isolation, battery, network hints). Read from the global scope the build
//! runs in, which may be a Window, a DedicatedWorkerGlobalScope or Node: every property is looked
//! up defensively, and an absent one reads as `null`, never as an error.

use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::to_js;

/// Past this a reported core count is not believed (some browsers report the host's, or a
/// fingerprinting-resistant constant); the runtime never starts more threads than this anyway.
const MAX_BELIEVED_CORES: u32 = 64;

thread_local! {
    // `performance` exists on windows, workers and Node (>= 16) alike; looked up once, as the
    // clock is read in timing loops.
    static PERFORMANCE: web_sys::Performance = get(&js_sys::global(), "performance").unchecked_into();
}

/// Milliseconds from `performance.now()`: the clock the session core is given.
pub fn now_ms() -> f64 {
    PERFORMANCE.with(|p| p.now())
}

fn get(target: &JsValue, key: &str) -> JsValue {
    if target.is_undefined() || target.is_null() {
        return JsValue::UNDEFINED;
    }
    js_sys::Reflect::get(target, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Connection {
    effective_type: Option<String>,
    save_data: bool,
}

#[derive(Serialize)]
struct Battery {
    level: f64,
    charging: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeviceFacts {
    cross_origin_isolated: bool,
    /// `navigator.hardwareConcurrency` as reported, or null.
    reported_cores: Option<u32>,
    /// The core count the runtime believes: at least 1, at most `MAX_BELIEVED_CORES`.
    cores: u32,
    /// `navigator.deviceMemory` (GiB, rounded by the browser), or null where not exposed.
    device_memory_gib: Option<f64>,
    connection: Option<Connection>,
    /// Filled from `navigator.getBattery()` where present (windows of Chromium), else null.
    battery: Option<Battery>,
}

impl DeviceFacts {
    fn read(global: &JsValue) -> DeviceFacts {
        let nav = get(global, "navigator");
        let reported = get(&nav, "hardwareConcurrency").as_f64().filter(|n| n.is_finite() && *n >= 1.0).map(|n| n as u32);
        let conn = get(&nav, "connection");
        let connection = (conn.is_object()).then(|| Connection {
            effective_type: get(&conn, "effectiveType").as_string(),
            save_data: get(&conn, "saveData").as_bool() == Some(true),
        });
        DeviceFacts {
            cross_origin_isolated: get(global, "crossOriginIsolated").as_bool() == Some(true),
            reported_cores: reported,
            cores: reported.unwrap_or(1).min(MAX_BELIEVED_CORES),
            device_memory_gib: get(&nav, "deviceMemory").as_f64(),
            connection,
            battery: None,
        }
    }
}

/// The device as this global scope reports it: a promise of `{crossOriginIsolated,
/// reportedCores, cores, deviceMemoryGiB, connection: {effectiveType, saveData} | null, battery:
/// {level, charging} | null}` (a promise because the battery is only read asynchronously).
#[wasm_bindgen(js_name = deviceFacts)]
pub fn device_facts() -> Result<js_sys::Promise, JsValue> {
    let global = js_sys::global();
    let facts = DeviceFacts::read(&global);
    let plain = to_js(&facts)?;
    let nav = get(&global, "navigator");
    let Some(get_battery) = get(&nav, "getBattery").dyn_into::<js_sys::Function>().ok() else {
        return Ok(js_sys::Promise::resolve(&plain));
    };
    // A refused or failing battery read leaves `battery: null`.
    let Ok(pending) = get_battery.call0(&nav) else {
        return Ok(js_sys::Promise::resolve(&plain));
    };
    let pending = js_sys::Promise::resolve(&pending);
    let without = plain.clone();
    let with_battery = Closure::once_into_js(move |b: JsValue| -> JsValue {
        let battery = match (get(&b, "level").as_f64(), get(&b, "charging").as_bool()) {
            (Some(level), Some(charging)) => Some(Battery { level, charging }),
            _ => None,
        };
        to_js(&DeviceFacts { battery, ..facts }).unwrap_or(plain)
    });
    let on_error = Closure::once_into_js(move |_: JsValue| -> JsValue { without });
    let then: js_sys::Function = get(&pending, "then").unchecked_into();
    Ok(then.call2(&pending, &with_battery, &on_error)?.unchecked_into())
}
