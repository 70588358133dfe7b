//! `suite!`: declares each test once, as a native `#[test]` and as a `wasm_bindgen_test` in the
//! wasm builds (Node and Chromium, scripts/wasm-test.sh).

macro_rules! suite {
    ($(fn $name:ident() $body:block)*) => {$(
        #[cfg_attr(not(target_arch = "wasm32"), test)]
        #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
        fn $name() $body
    )*};
}
