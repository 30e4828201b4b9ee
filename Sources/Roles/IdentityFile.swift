import Crypto
import Loop
import Wire

/// Why an identity (key or certificate) file could not be used. `message` starts
/// with the path, so callers can prefix the flag: "--identity FILE: ...".
public struct IdentityError: Error {
    public let message: String
    init(_ path: String, _ what: String) { message = path + ": " + what }
}

/// Identity key files: ECDSA P-256, PEM, mode 0600, created atomically.
public enum IdentityFile {
    /// Loads the key at `path`, or creates one there if the file does not exist.
    public static func loadOrCreate(_ path: String, rng: Rng) throws(IdentityError) -> (PrivateKey, created: Bool) {
        if Files.exists(path) { return (try load(path), false) }
        let key: PrivateKey
        var pem: [UInt8]
        do throws(CryptoError) {
            key = try PrivateKey.generate(rng: rng)
            pem = try key.pem()
        } catch {
            throw IdentityError(path, error.message)
        }
        defer { wipe(&pem) }
        do throws(SysError) {
            try Files.writeAtomically(path, pem, mode: 0o600)
        } catch {
            throw IdentityError(path, error.message)
        }
        return (key, true)
    }

    /// Loads an existing key file.
    public static func load(_ path: String) throws(IdentityError) -> PrivateKey {
        var data: [UInt8]
        do throws(SysError) { data = try Files.read(path) } catch {
            throw IdentityError(path, error.message)
        }
        defer { wipe(&data) }
        if let mode = Files.mode(path), mode & 0o077 != 0 {
            Log.warn("key_file_permissions", "file=" + Log.quote(path) + " mode=0" + String(mode, radix: 8) + " want=0600")
        }
        do throws(CryptoError) {
            return try PrivateKey.parse(data)
        } catch {
            throw IdentityError(path, "not a valid EC P-256 private key (" + error.message + ")")
        }
    }

    /// The ID of a key or certificate file.
    public static func idOf(_ path: String) throws(IdentityError) -> AgentID {
        var data: [UInt8]
        do throws(SysError) { data = try Files.read(path) } catch {
            throw IdentityError(path, error.message)
        }
        defer { wipe(&data) }
        do throws(CryptoError) {
            return try Identity.idOfKeyOrCertificate(data)
        } catch {
            throw IdentityError(path, "not a P-256 key or certificate (" + error.message + ")")
        }
    }

    /// Loads a certificate file (PEM or DER, one or more certificates).
    public static func certificate(_ path: String) throws(IdentityError) -> Certificate {
        let data: [UInt8]
        do throws(SysError) { data = try Files.read(path) } catch {
            throw IdentityError(path, error.message)
        }
        do throws(CryptoError) {
            return try Certificate.parse(data)
        } catch {
            throw IdentityError(path, "not a valid certificate (" + error.message + ")")
        }
    }
}
