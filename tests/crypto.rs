//! The provider of this build against outside vectors — Wycheproof, for every primitive and
//! parameter set the protocol uses — and against itself (round trips, tampering). The same
//! tests run with either provider (`cargo test --test main crypto::` and
//! `cargo test --no-default-features --features rustcrypto --test main crypto::`).

use seashell::crypto::*;
use wycheproof::TestResult;

/// Whether a result agrees with what Wycheproof expects: `Acceptable` cases may go either way.
fn agrees(expected: TestResult, succeeded: bool) -> bool {
    match expected {
        TestResult::Valid => succeeded,
        TestResult::Invalid => !succeeded,
        TestResult::Acceptable => true,
    }
}

/// The Wycheproof cases the RustCrypto provider answers differently, and why: `rsa` 0.10
/// deliberately ignores the first octet of the OAEP encoding (its own test
/// `decrypt_ignores_first_octet`), so a ciphertext whose only fault is that octet decrypts.
/// seashell reveals no OAEP failure to anyone (a KeyTransport that does not decrypt gets a
/// random secret), so this changes nothing it does; AWS-LC refuses the case.
fn known_oaep_deviations() -> &'static [usize] {
    if PROVIDER == "rustcrypto" { &[23] } else { &[] }
}

#[test]
fn rsa_oaep_3072_sha256_decrypts_as_wycheproof_says() {
    use wycheproof::rsa_oaep::{TestName, TestSet};
    let set = TestSet::load(TestName::Rsa3072Sha256Mgf1Sha256).unwrap();
    let (mut checked, mut deviations) = (0, Vec::new());
    for group in &set.test_groups {
        let key = PrivateKey::from_pkcs8_der(&group.pkcs8).unwrap();
        for test in &group.tests {
            let got = key.decrypt_oaep_sha256(&test.label, &test.ct);
            let right = got.as_ref().is_ok_and(|pt| pt.as_slice() == *test.pt);
            let succeeded = got.is_ok();
            if !agrees(test.result, succeeded) || (succeeded && !right) {
                deviations.push(test.tc_id);
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} cases");
    assert_eq!(deviations, known_oaep_deviations(), "tcIds that deviate");
}

#[test]
fn rsa_oaep_round_trips_under_its_label_only() {
    let key = PrivateKey::from_pkcs8_der(&fixture_der()).unwrap();
    let secret = [7u8; 32];
    let ct = key
        .public_key()
        .encrypt_oaep_sha256(b"label", &secret)
        .unwrap();
    assert_eq!(ct.len(), key.public_key().size());
    assert_eq!(
        key.decrypt_oaep_sha256(b"label", &ct).unwrap().as_slice(),
        secret
    );
    assert!(key.decrypt_oaep_sha256(b"other", &ct).is_err());
    assert!(key.decrypt_oaep_sha256(b"label", &ct[1..]).is_err());
}

#[test]
fn rsa_pss_3072_sha256_verifies_as_wycheproof_says() {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    let set = TestSet::load(TestName::RsaPss3072Sha256Mgf1SaltLen32).unwrap();
    let mut checked = 0;
    for group in &set.test_groups {
        let key = PublicKey::from_spki_der(&group.der).unwrap();
        for test in &group.tests {
            let ok = key.verify_pss_sha256(&test.msg, &test.sig);
            assert!(
                agrees(test.result, ok),
                "tcId {} ({}): verified = {ok}",
                test.tc_id,
                test.comment
            );
            checked += 1;
        }
    }
    assert!(checked >= 100, "only {checked} cases");
}

#[test]
fn rsa_pss_signatures_verify_and_tampering_does_not() {
    let key = PrivateKey::from_pkcs8_der(&fixture_der()).unwrap();
    let sig = key.sign_pss_sha256(b"message").unwrap();
    assert_eq!(sig.len(), key.public_key().size());
    assert!(key.public_key().verify_pss_sha256(b"message", &sig));
    assert!(!key.public_key().verify_pss_sha256(b"massage", &sig));
    let mut bad = sig.clone();
    bad[10] ^= 1;
    assert!(!key.public_key().verify_pss_sha256(b"message", &bad));
    assert!(!key.public_key().verify_pss_sha256(b"message", &sig[1..]));
}

#[test]
fn aes_256_gcm_seals_and_opens_as_wycheproof_says() {
    use wycheproof::aead::{TestName, TestSet};
    let set = TestSet::load(TestName::AesGcm).unwrap();
    let mut checked = 0;
    for group in &set.test_groups {
        // The protocol uses 256-bit keys, 96-bit nonces and 128-bit tags only.
        if group.key_size != 256 || group.nonce_size != 96 || group.tag_size != 128 {
            continue;
        }
        for test in &group.tests {
            let key = AeadKey::new(&test.key[..].try_into().unwrap()).unwrap();
            let nonce: [u8; 12] = test.nonce[..].try_into().unwrap();
            let mut sealed = test.pt.to_vec();
            let tag = key.seal_in_place(&nonce, &test.aad, &mut sealed).unwrap();
            let mut wire = [&test.ct[..], &test.tag[..]].concat();
            let opened = key
                .open_in_place(&nonce, &test.aad, &mut wire)
                .map(|pt| pt.to_vec());
            let ok = opened.as_ref().is_ok_and(|pt| pt[..] == test.pt[..]);
            assert!(
                agrees(test.result, ok),
                "tcId {} ({}): opened = {ok}",
                test.tc_id,
                test.comment
            );
            if test.result == TestResult::Valid {
                assert_eq!((&sealed[..], &tag[..]), (&test.ct[..], &test.tag[..]));
            }
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} cases");
}

#[test]
fn x25519_agrees_as_wycheproof_says_and_refuses_low_order_shares() {
    use wycheproof::xdh::{TestFlag, TestName, TestSet};
    let set = TestSet::load(TestName::X25519).unwrap();
    let (mut checked, mut low_order) = (0, 0);
    for group in &set.test_groups {
        for test in &group.tests {
            let (Ok(private), Ok(public)) = (
                <[u8; 32]>::try_from(&test.private_key[..]),
                <[u8; 32]>::try_from(&test.public_key[..]),
            ) else {
                continue;
            };
            let got = x25519(&private, &public);
            let zero = test.shared_secret.iter().all(|&b| b == 0);
            if zero {
                // The all-zero value is what a low-order share gives: always refused here.
                assert!(
                    got.is_err(),
                    "tcId {}: low-order share accepted",
                    test.tc_id
                );
                low_order += 1;
            } else {
                let ok = got.as_ref().is_ok_and(|s| s[..] == test.shared_secret[..]);
                let expected = if test.flags.contains(&TestFlag::ZeroSharedSecret) {
                    TestResult::Invalid
                } else {
                    test.result
                };
                assert!(
                    agrees(expected, ok) || test.result == TestResult::Acceptable,
                    "tcId {} ({}): {ok}",
                    test.tc_id,
                    test.comment
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 500 && low_order >= 10,
        "{checked} cases, {low_order} low-order"
    );
}

#[test]
fn hkdf_sha256_expands_as_wycheproof_says() {
    use wycheproof::hkdf::{TestName, TestSet};
    let set = TestSet::load(TestName::HkdfSha256).unwrap();
    let mut checked = 0;
    for group in &set.test_groups {
        for test in &group.tests {
            let mut out = vec![0; test.size];
            let ok = Prk::extract(&test.salt, &test.ikm)
                .expand(&test.info, &mut out)
                .is_ok()
                && out[..] == test.okm[..];
            assert!(
                agrees(test.result, ok),
                "tcId {} ({}): {ok}",
                test.tc_id,
                test.comment
            );
            checked += 1;
        }
    }
    assert!(checked >= 80, "only {checked} cases");
}

#[test]
fn sha256_and_random_do_what_they_say() {
    // FIPS 180-2 appendix B.1.
    assert_eq!(
        hex::encode(sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let mut hash = Sha256::new();
    hash.update(b"a");
    hash.update(b"bc");
    assert_eq!(hash.finish(), sha256(b"abc"));
    let (a, b) = (random::<32>().unwrap(), random::<32>().unwrap());
    assert_ne!(a, b);
}

#[test]
fn a_key_round_trips_through_pkcs8_and_its_public_half_through_spki() {
    let key = PrivateKey::from_pkcs8_der(&fixture_der()).unwrap();
    let again = PrivateKey::from_pkcs8_der(&key.to_pkcs8_der().unwrap()).unwrap();
    assert_eq!(again.public_key(), key.public_key());
    let public = PublicKey::from_spki_der(key.public_key().spki_der()).unwrap();
    assert_eq!(&public, key.public_key());
    assert_eq!(public.bits(), 3072);
    assert!(PublicKey::from_spki_der(&key.public_key().spki_der()[1..]).is_err());
    assert!(PrivateKey::from_pkcs8_der(b"not a key").is_err());
}

/// The client fixture key as PKCS#8 DER.
fn fixture_der() -> Vec<u8> {
    let pem = include_str!("fixtures/client_rsa");
    let (_, doc) = pkcs8::SecretDocument::from_pem(pem).unwrap();
    doc.as_bytes().to_vec()
}
