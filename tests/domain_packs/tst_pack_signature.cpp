#include <QCryptographicHash>
#include <QTest>

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "domain_packs/pack_manifest.h"
#include "domain_packs/pack_signature.h"

using namespace folio::packs;

namespace {

std::string sample_manifest_bytes() {
    PackManifest manifest;
    manifest.name = "finance-core";
    manifest.version = "1.0.0";
    manifest.sequence = 3;
    manifest.domain = "finance";
    manifest.min_folio_version = "0.1.0";
    manifest.base_models.push_back({"llama", std::string(64, '1'), std::nullopt});
    manifest.files.push_back({"prompts/ask.txt", 812, std::string(64, 'a')});
    manifest.files.push_back({"schemas/10-k.json", 2048, std::string(64, 'b')});
    manifest.archive = {1400, std::string(64, 'c')};
    return canonical_manifest_json(manifest);
}

// Expects call() to throw a PackError whose what() is "<field>: ..." and
// contains message.
template <typename Call>
bool throws_pack_error(Call call, const std::string& field, const std::string& message, std::string* what_out) {
    try {
        call();
    } catch (const PackError& error) {
        *what_out = error.what();
        return error.field() == field && what_out->starts_with(field + ": ") &&
               what_out->find(message) != std::string::npos;
    }
    *what_out = "no exception";
    return false;
}

#define QVERIFY_PACK_ERROR(call, field, message)                                          \
    do {                                                                                  \
        std::string what;                                                                 \
        QVERIFY2(throws_pack_error([&] { call; }, field, message, &what), what.c_str()); \
    } while (false)

// RFC 8032 section 7.1, TEST 1 and TEST 2: libsodium key layout (seed |
// public key), message, signature.
struct Rfc8032Vector {
    QByteArray seed_hex, public_key_hex, message_hex, signature_hex;
};
const Rfc8032Vector kRfc8032Vectors[] = {
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe"
     "24655141438e7a100b"},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb430"
     "2aeeb00d291612bb0c00"},
};

// Key id computed independently of the library: SHA-256, first 8 bytes, hex.
std::string expected_key_id(const QByteArray& public_key) {
    return QCryptographicHash::hash(public_key, QCryptographicHash::Sha256).left(8).toHex().toStdString();
}

std::string key_file(const char* kind, const QByteArray& public_key, const QByteArray& key_bytes) {
    return "folio pack " + std::string(kind) + " key " + expected_key_id(public_key) + "\n" +
           key_bytes.toBase64().toStdString() + "\n";
}

}  // namespace

class PackSignatureTest : public QObject {
    Q_OBJECT

private slots:
    void signature_verifies_with_its_key() {
        const KeyPair signer = generate_keypair();
        const KeyPair other = generate_keypair();
        QVERIFY(signer.public_key != other.public_key);
        QVERIFY(signer.secret_key.public_key() == signer.public_key);

        const std::string manifest = sample_manifest_bytes();
        const std::string signature = sign_manifest(manifest, signer.secret_key);
        QCOMPARE(signature.size(), kEncodedSignatureBytes);
        QVERIFY(signature.starts_with("Ed"));

        const std::vector<PublicKey> trusted = {other.public_key, signer.public_key};
        QCOMPARE(key_id_hex(verify_manifest(manifest, signature, trusted)), key_id_hex(signer.public_key.id()));
    }

    void any_flipped_manifest_byte_is_refused() {
        const KeyPair signer = generate_keypair();
        const std::vector<PublicKey> trusted = {signer.public_key};
        const std::string manifest = sample_manifest_bytes();
        const std::string signature = sign_manifest(manifest, signer.secret_key);
        for (std::size_t i = 0; i < manifest.size(); ++i) {
            std::string tampered = manifest;
            tampered[i] = static_cast<char>(tampered[i] ^ (1 << (i % 8)));
            QVERIFY_PACK_ERROR(verify_manifest(tampered, signature, trusted), "signature",
                               "does not verify with trusted key " + key_id_hex(signer.public_key.id()));
        }
        QVERIFY_PACK_ERROR(verify_manifest(manifest + " ", signature, trusted), "signature", "does not verify");
        QVERIFY_PACK_ERROR(verify_manifest(manifest.substr(1), signature, trusted), "signature", "does not verify");
    }

    void any_flipped_signature_byte_is_refused() {
        const KeyPair signer = generate_keypair();
        const std::vector<PublicKey> trusted = {signer.public_key};
        const std::string manifest = sample_manifest_bytes();
        const std::string signature = sign_manifest(manifest, signer.secret_key);
        for (std::size_t i = 0; i < signature.size(); ++i) {
            std::string tampered = signature;
            tampered[i] = static_cast<char>(tampered[i] ^ (1 << (i % 8)));
            // Which check refuses it depends on the part of the encoding hit.
            const char* message = i < 2 ? "is not an Ed25519 signature"
                                  : i < 2 + kKeyIdBytes ? "signed by an unknown key"
                                                        : "does not verify";
            QVERIFY_PACK_ERROR(verify_manifest(manifest, tampered, trusted), "signature", message);
        }
        QVERIFY_PACK_ERROR(verify_manifest(manifest, signature.substr(0, kEncodedSignatureBytes - 1), trusted),
                           "signature", "is 73 bytes, expected 74");
        QVERIFY_PACK_ERROR(verify_manifest(manifest, "", trusted), "signature", "is 0 bytes, expected 74");
    }

    void unknown_key_is_refused_by_id() {
        const KeyPair signer = generate_keypair();
        const KeyPair trusted_only = generate_keypair();
        const std::string manifest = sample_manifest_bytes();
        const std::string signature = sign_manifest(manifest, signer.secret_key);
        const std::string expected =
            "signature: signed by an unknown key " + expected_key_id(QByteArray(
                reinterpret_cast<const char*>(signer.public_key.bytes.data()), int(kPublicKeyBytes)));
        for (const std::vector<PublicKey>& trusted :
             {std::vector<PublicKey>{trusted_only.public_key}, std::vector<PublicKey>{}}) {
            try {
                verify_manifest(manifest, signature, trusted);
                QFAIL("signature by an untrusted key accepted");
            } catch (const PackError& error) {
                QCOMPARE(std::string(error.what()), expected);
            }
        }
    }

    void a_key_that_claims_another_id_does_not_verify() {
        // The key id is not signed; pointing it at a trusted key must not help.
        const KeyPair signer = generate_keypair();
        const KeyPair trusted_key = generate_keypair();
        const std::string manifest = sample_manifest_bytes();
        std::string signature = sign_manifest(manifest, signer.secret_key);
        const KeyId trusted_id = trusted_key.public_key.id();
        std::copy(trusted_id.begin(), trusted_id.end(), signature.begin() + 2);
        const std::vector<PublicKey> trusted = {trusted_key.public_key};
        QVERIFY_PACK_ERROR(verify_manifest(manifest, signature, trusted), "signature", "does not verify");
    }

    void matches_rfc8032_test_vectors() {
        for (const Rfc8032Vector& vector : kRfc8032Vectors) {
            const QByteArray public_key = QByteArray::fromHex(vector.public_key_hex);
            const QByteArray secret_key = QByteArray::fromHex(vector.seed_hex) + public_key;
            const SecretKey secret = parse_secret_key_file(key_file("secret", public_key, secret_key));
            const PublicKey expected_public = parse_public_key_file(key_file("public", public_key, public_key));
            QVERIFY(secret.public_key() == expected_public);
            QCOMPARE(key_id_hex(expected_public.id()), expected_key_id(public_key));

            const QByteArray message = QByteArray::fromHex(vector.message_hex);
            const std::string message_bytes = message.toStdString();
            const std::string encoded = sign_manifest(message_bytes, secret);
            QCOMPARE(QByteArray::fromStdString(encoded.substr(2 + kKeyIdBytes)).toHex(), vector.signature_hex);
            const std::vector<PublicKey> trusted = {expected_public};
            QVERIFY(verify_manifest(message_bytes, encoded, trusted) == expected_public.id());
        }
    }

    void key_files_round_trip() {
        const KeyPair pair = generate_keypair();
        const std::string id = key_id_hex(pair.public_key.id());
        QCOMPARE(id.size(), 2 * kKeyIdBytes);

        const std::string public_text = public_key_file_text(pair.public_key);
        QVERIFY(public_text.starts_with("folio pack public key " + id + "\n"));
        QCOMPARE(std::count(public_text.begin(), public_text.end(), '\n'), std::ptrdiff_t{2});
        QVERIFY(parse_public_key_file(public_text) == pair.public_key);

        const std::string secret_text = secret_key_file_text(pair.secret_key);
        QVERIFY(secret_text.starts_with("folio pack secret key " + id + "\n"));
        const SecretKey parsed = parse_secret_key_file(secret_text);
        QVERIFY(parsed.bytes() == pair.secret_key.bytes());

        // Files edited on another system: CRLF line ends, no final newline.
        std::string crlf = public_text;
        crlf.replace(crlf.find('\n'), 1, "\r\n");
        crlf.pop_back();
        QVERIFY(parse_public_key_file(crlf) == pair.public_key);

        const std::vector<PublicKey> trusted = {parse_public_key_file(public_text)};
        const std::string manifest = sample_manifest_bytes();
        QVERIFY(verify_manifest(manifest, sign_manifest(manifest, parsed), trusted) == pair.public_key.id());
    }

    void key_of_the_wrong_kind_is_named() {
        const KeyPair pair = generate_keypair();
        QVERIFY_PACK_ERROR(parse_public_key_file(secret_key_file_text(pair.secret_key)), "public key file",
                           "this is a secret key file; give the public key file here");
        QVERIFY_PACK_ERROR(parse_secret_key_file(public_key_file_text(pair.public_key)), "secret key file",
                           "this is a public key file; give the secret key file here");
    }

    void damaged_key_files_are_refused() {
        const KeyPair pair = generate_keypair();
        const KeyPair other = generate_keypair();
        const std::string public_text = public_key_file_text(pair.public_key);
        const std::string secret_text = secret_key_file_text(pair.secret_key);
        const std::string id = key_id_hex(pair.public_key.id());
        const std::string other_id = key_id_hex(other.public_key.id());
        const std::string body = public_text.substr(public_text.find('\n') + 1);

        QVERIFY_PACK_ERROR(parse_public_key_file(""), "public key file", "does not start with the line");
        QVERIFY_PACK_ERROR(parse_public_key_file(body), "public key file",
                           "does not start with the line \"folio pack public key <key id>\"");
        QVERIFY_PACK_ERROR(parse_public_key_file("folio pack public key " + id), "public key file",
                           "has no key line");
        QVERIFY_PACK_ERROR(parse_public_key_file(public_text + body), "public key file", "more than two lines");
        QVERIFY_PACK_ERROR(parse_public_key_file("folio pack public key " + id + "\n***\n"), "public key file",
                           "not base64 of 32 bytes");
        QVERIFY_PACK_ERROR(parse_public_key_file("folio pack public key " + id + "\n" + body.substr(4)),
                           "public key file", "not base64 of 32 bytes");
        QVERIFY_PACK_ERROR(parse_public_key_file("folio pack public key " + id + "\n" +
                                                 secret_text.substr(secret_text.find('\n') + 1)),
                           "public key file", "not base64 of 32 bytes");

        std::string renamed = public_text;
        renamed.replace(renamed.find(id), id.size(), other_id);
        QVERIFY_PACK_ERROR(parse_public_key_file(renamed), "public key file",
                           "holds key " + id + ", not the key \"" + other_id + "\" its header names");

        // A secret key whose public half was swapped for another key's.
        std::array<std::uint8_t, kSecretKeyBytes> spliced = pair.secret_key.bytes();
        std::copy(other.public_key.bytes.begin(), other.public_key.bytes.end(), spliced.end() - kPublicKeyBytes);
        QVERIFY_PACK_ERROR(parse_secret_key_file(secret_key_file_text(SecretKey(spliced))), "secret key file",
                           "does not match its seed");
    }
};

QTEST_GUILESS_MAIN(PackSignatureTest)
#include "tst_pack_signature.moc"
