//! LLM jobs: chat requests checked at submission, escrow of the token budget, settlement of
//! the reported tokens.

use super::*;
use opg_primitives::chat::{ChatRequest, Prompt, TokenBudget};
use polkadot_sdk::frame_support::{assert_noop, assert_ok};

/// W1: 100 per job, 2 per prompt token and 5 per completion token.
const PRICES: TokenPrices<u64> = TokenPrices { prompt_per_1k: 2_000, completion_per_1k: 5_000 };

fn llm_market() -> ReleaseId {
	let release = publish_llm_release(vanilla_and_tee());
	register(W1, release, 2_000, 100, vanilla_and_tee());
	assert_ok!(Inference::set_token_prices(RuntimeOrigin::signed(W1), PRICES));
	release
}

fn queue_chat(who: u64, release: ReleaseId, request: &ChatRequest, max_fee: u64) -> DispatchResult {
	Inference::submit_job(
		RuntimeOrigin::signed(who),
		release,
		VerificationMode::Vanilla,
		request.encode().try_into().unwrap(),
		max_fee,
		None,
	)
}

#[test]
fn the_escrow_covers_the_token_budget_and_settlement_pays_the_reported_tokens() {
	new_test_ext(|| {
		let r = llm_market();
		// "What is 2+2?": 12 bytes, so at most 10 + 12 + 5 = 27 prompt tokens; 8 completion.
		let request = chat_request("What is 2+2?", 8);
		let input_len = request.encoded_size() as u64;
		let job = NextJobId::<Test>::get();
		assert_ok!(queue_chat(ALICE, r, &request, 1_000));
		assert_eq!(
			PendingJobs::<Test>::get(job).unwrap().tokens,
			Some(TokenBudget { prompt: 27, completion: 8 })
		);
		draw();
		// 100 + (27 * 2_000 + 8 * 5_000) / 1_000 = 194.
		let record = Jobs::<Test>::get(job).unwrap();
		assert_eq!(record.price, 194);
		assert_eq!(
			record.tokens,
			Some(TokenTerms {
				base: 100,
				prices: PRICES,
				budget: TokenBudget { prompt: 27, completion: 8 }
			})
		);
		let max_fee = 10 + input_len + 128;
		assert_eq!(escrow(ALICE), 194 + max_fee);

		let (alice, w1, publisher) = (free(ALICE), free(W1), free(PUBLISHER));
		let answer = chat_response(20, 3);
		assert_ok!(Inference::submit_result(
			RuntimeOrigin::signed(W1),
			job,
			answer.clone(),
			Evidence::None
		));
		// 100 + (20 * 2_000 + 3 * 5_000) / 1_000 = 155; 10% royalty, rounded down.
		let fee = 10 + input_len + answer.len() as u64;
		assert_eq!(free(W1), w1 + 155 - 15);
		assert_eq!(free(PUBLISHER), publisher + 15);
		assert_eq!(escrow(ALICE), 0);
		assert_eq!(free(ALICE), alice + 194 + max_fee - 155 - fee);
		System::assert_has_event(
			Event::JobSettled {
				job,
				mode: VerificationMode::Vanilla,
				worker_payment: 140,
				royalty: 15,
				verification_fee: fee,
				refund: 194 + max_fee - 155 - fee,
			}
			.into(),
		);
	});
}

#[test]
fn reported_prompt_tokens_over_the_bound_are_billed_at_the_bound() {
	new_test_ext(|| {
		let r = llm_market();
		let job = NextJobId::<Test>::get();
		assert_ok!(queue_chat(ALICE, r, &chat_request("What is 2+2?", 8), 1_000));
		draw();
		let w1 = free(W1);
		assert_ok!(Inference::submit_result(
			RuntimeOrigin::signed(W1),
			job,
			chat_response(5_000, 8),
			Evidence::None
		));
		// The whole budget: 194, of which 19 royalty.
		assert_eq!(free(W1), w1 + 194 - 19);
	});
}

#[test]
fn a_request_the_release_cannot_take_is_refused_and_holds_nothing() {
	new_test_ext(|| {
		let r = llm_market();
		let tensors = publish_release(vanilla_and_tee());
		register(W2, tensors, 2_000, 100, vanilla_and_tee());
		let refused = |request: ChatRequest| {
			assert_noop!(queue_chat(ALICE, r, &request, 1_000), Error::<Test>::InvalidChatRequest);
		};
		refused(chat_request("hi", 0));
		// The mock's context is 64 tokens.
		refused(chat_request("hi", 65));
		refused(ChatRequest { prompt: Prompt::Chat(vec![]), ..chat_request("hi", 8) });
		refused(ChatRequest { prompt: Prompt::Raw(vec![0xff]), ..chat_request("hi", 8) });
		refused(ChatRequest { stop: vec![vec![b'x'; 33]], ..chat_request("hi", 8) });
		let mut hot = chat_request("hi", 8);
		hot.sampling.temperature = 10_001;
		refused(hot);
		assert_noop!(
			Inference::submit_job(
				RuntimeOrigin::signed(ALICE),
				r,
				VerificationMode::Vanilla,
				input(),
				1_000,
				None
			),
			Error::<Test>::InvalidChatRequest
		);
		// A chat request is no tensor input.
		assert_noop!(
			queue_chat(ALICE, tensors, &chat_request("hi", 8), 1_000),
			Error::<Test>::InvalidInput
		);
		// At the edge: the whole context.
		assert_ok!(queue_chat(ALICE, r, &chat_request("hi", 64), 1_000));
	});
}

#[test]
fn an_answer_that_breaks_its_request_or_itself_is_refused() {
	new_test_ext(|| {
		let r = llm_market();
		let job = NextJobId::<Test>::get();
		assert_ok!(queue_chat(ALICE, r, &chat_request("What is 2+2?", 8), 1_000));
		draw();
		let refused = |output: BoundedVec<u8, ConstU32<128>>| {
			assert_noop!(
				Inference::submit_result(RuntimeOrigin::signed(W1), job, output, Evidence::None),
				Error::<Test>::InvalidOutput
			);
		};
		// More tokens than `max_tokens`.
		refused(chat_response(20, 9));
		// Counts that disagree with the tokens.
		let mut lying =
			opg_primitives::chat::ChatResponse::decode(&mut &chat_response(20, 3)[..]).unwrap();
		lying.completion_tokens = 1;
		refused(lying.encode().try_into().unwrap());
		// Tensors are no chat response.
		refused(output());
		assert_ok!(Inference::submit_result(
			RuntimeOrigin::signed(W1),
			job,
			chat_response(20, 8),
			Evidence::None
		));
	});
}

#[test]
fn the_price_cap_and_the_quote_count_the_whole_token_budget() {
	new_test_ext(|| {
		let r = llm_market();
		// W2: cheaper per job, dearer per token; at most 50 + (27 * 4 + 8 * 10) = 238.
		register(W2, r, 2_000, 50, vanilla_and_tee());
		assert_ok!(Inference::set_token_prices(
			RuntimeOrigin::signed(W2),
			TokenPrices { prompt_per_1k: 4_000, completion_per_1k: 10_000 }
		));
		let request = chat_request("What is 2+2?", 8);
		// Two workers can take it (`MinDrawCandidates` = 2): a cap that only W1's 194 meets
		// would single it out.
		assert_noop!(queue_chat(ALICE, r, &request, 237), Error::<Test>::PoolTooNarrow);
		let quote = Inference::quote_input(r, VerificationMode::Vanilla, &request.encode())
			.expect("two workers serve it");
		assert_eq!(quote.price, 238);
		assert_eq!(quote.verification_fee, 10 + request.encoded_size() as u64 + 128);
		assert_ok!(queue_chat(ALICE, r, &request, quote.price));
		// The size-only quote cannot price a chat.
		assert_eq!(Inference::quote(r, VerificationMode::Vanilla, 30), None);
		assert_eq!(Inference::quote_input(r, VerificationMode::Vanilla, b"not a request"), None);
	});
}

#[test]
fn token_prices_are_a_workers_own_and_kept_by_drawn_jobs() {
	new_test_ext(|| {
		let r = llm_market();
		assert_noop!(
			Inference::set_token_prices(RuntimeOrigin::signed(ALICE), PRICES),
			Error::<Test>::NotWorker
		);
		System::assert_has_event(Event::TokenPricesSet { worker: W1, prices: PRICES }.into());
		let job = NextJobId::<Test>::get();
		assert_ok!(queue_chat(ALICE, r, &chat_request("What is 2+2?", 8), 1_000));
		draw();
		assert_ok!(Inference::set_token_prices(
			RuntimeOrigin::signed(W1),
			TokenPrices { prompt_per_1k: 0, completion_per_1k: 0 }
		));
		let w1 = free(W1);
		assert_ok!(Inference::submit_result(
			RuntimeOrigin::signed(W1),
			job,
			chat_response(20, 3),
			Evidence::None
		));
		assert_eq!(free(W1), w1 + 140, "the draw's prices");
		assert_ok!(Inference::pause_worker(RuntimeOrigin::signed(W1)));
		assert_ok!(Inference::unregister_worker(RuntimeOrigin::signed(W1)));
		assert_noop!(
			Inference::set_token_prices(RuntimeOrigin::signed(W1), PRICES),
			Error::<Test>::WorkerUnbonding
		);
	});
}

#[test]
fn a_rejected_llm_job_pays_only_its_data_fee() {
	new_test_ext(|| {
		let r = llm_market();
		let request = chat_request("What is 2+2?", 8);
		let job = NextJobId::<Test>::get();
		assert_ok!(queue_chat(ALICE, r, &request, 1_000));
		draw();
		let alice = free(ALICE);
		let held = escrow(ALICE);
		// E.g. the rendered prompt and `max_tokens` do not fit the context.
		assert_ok!(Inference::reject_job(RuntimeOrigin::signed(W1), job, RejectReason::BadInput));
		assert_eq!(free(ALICE), alice + held - request.encoded_size() as u64);
	});
}
