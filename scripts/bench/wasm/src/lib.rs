//! Exports for timing the verifiers in a wasm engine. Inputs are written by the host into
//! buffers from `alloc`; results are 0 (valid) or 1.
//!
//! Safety of every export: pointers and lengths must describe bytes the host wrote into
//! memory this module allocated (run.mjs does); this is a benchmark harness, not an API.
#![no_std]
#![allow(clippy::missing_safety_doc)]

extern crate alloc;

use alloc::vec::Vec;
use core::{
	alloc::{GlobalAlloc, Layout},
	arch::wasm32,
};

/// Bump allocator on `memory.grow`: never frees, enough for timing runs.
struct Bump;
static mut NEXT: usize = 0;
static mut END: usize = 0;

unsafe impl GlobalAlloc for Bump {
	unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
		let align = layout.align();
		let mut start = (NEXT + align - 1) & !(align - 1);
		if NEXT == 0 || start + layout.size() > END {
			let pages = (layout.size() + align) / 65536 + 1;
			let first = wasm32::memory_grow(0, pages);
			if first == usize::MAX {
				return core::ptr::null_mut();
			}
			if first * 65536 != END {
				// Not contiguous with the current region: start in the new pages.
				start = (first * 65536 + align - 1) & !(align - 1);
			}
			END = (first + pages) * 65536;
		}
		NEXT = start + layout.size();
		start as *mut u8
	}
	unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
}

#[global_allocator]
static ALLOC: Bump = Bump;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
	wasm32::unreachable()
}

static mut PREPARED: Vec<u8> = Vec::new();
static mut KNOWN_CAS: Vec<[u8; 32]> = Vec::new();

unsafe fn slice<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
	core::slice::from_raw_parts(ptr, len)
}

#[no_mangle]
pub extern "C" fn alloc(len: usize) -> *mut u8 {
	let mut v = Vec::<u8>::with_capacity(len);
	let p = v.as_mut_ptr();
	core::mem::forget(v);
	p
}

/// Registration: decode and check a compact key, prepare it, keep it for `groth16_verify`.
#[no_mangle]
pub unsafe extern "C" fn groth16_register(key: *const u8, len: usize) -> u32 {
	match opg_groth16::VerifyingKey::decode(slice(key, len)) {
		Ok(k) => {
			PREPARED = k.prepare().to_bytes();
			0
		},
		Err(_) => 1,
	}
}

#[no_mangle]
pub unsafe extern "C" fn groth16_verify(
	proof: *const u8,
	proof_len: usize,
	inputs: *const u8,
	inputs_len: usize,
) -> u32 {
	#[allow(static_mut_refs)]
	let prepared = &PREPARED[..];
	match opg_groth16::verify_encoded(prepared, slice(proof, proof_len), slice(inputs, inputs_len))
	{
		Ok(()) => 0,
		Err(_) => 1,
	}
}

#[no_mangle]
pub unsafe extern "C" fn nitro_verify(doc: *const u8, len: usize, now_ms: u64) -> u32 {
	match opg_nitro::verify(slice(doc, len), &[opg_nitro::AWS_NITRO_ROOT_G1], now_ms) {
		Ok(_) => 0,
		Err(_) => 1,
	}
}

/// Like `nitro_verify`, remembering the CAs it verified for `nitro_verify_cached`.
#[no_mangle]
pub unsafe extern "C" fn nitro_learn(doc: *const u8, len: usize, now_ms: u64) -> u32 {
	match opg_nitro::verify(slice(doc, len), &[opg_nitro::AWS_NITRO_ROOT_G1], now_ms) {
		Ok(a) => {
			KNOWN_CAS = a.verified_cas.iter().map(|(f, _)| *f).collect();
			0
		},
		Err(_) => 1,
	}
}

/// A re-attestation: the CAs learnt before are not verified again.
#[no_mangle]
pub unsafe extern "C" fn nitro_verify_cached(doc: *const u8, len: usize, now_ms: u64) -> u32 {
	#[allow(static_mut_refs)]
	let known = |f: &[u8; 32]| KNOWN_CAS.contains(f);
	let roots: &[&[u8]] = &[opg_nitro::AWS_NITRO_ROOT_G1];
	match opg_nitro::verify_cached(
		slice(doc, len),
		roots,
		now_ms,
		opg_nitro::Freshness::default(),
		&known,
	) {
		Ok(a) if a.signatures == 2 => 0,
		_ => 1,
	}
}
