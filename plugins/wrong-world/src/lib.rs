//! A valid component of the wrong world: hoard must reject it at load time.

wit_bindgen::generate!({ path: "wit", world: "wrong" });

struct Calculator;

impl exports::hoard_test::wrong::calculator::Guest for Calculator {
    fn add(a: u32, b: u32) -> u32 {
        a.wrapping_add(b)
    }
}

export!(Calculator);
