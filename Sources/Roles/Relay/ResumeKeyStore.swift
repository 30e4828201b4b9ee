import Crypto
import Loop
import Wire

/// The relay's resume keys (docs/SECURITY.md, "Resumed admission"): the current key
/// seals the credentials the relay hands out, the previous one still opens them. Kept
/// in `--state/resume-keys` (0600, written atomically: temp file, fsync, rename) so a
/// restarted relay, even after kill -9, still admits its devices without public-key
/// work. The relay keeps nothing per device.
///
///     file = "AGRK" | format u8 (1) | count u8 (1...2) | count x (key id[4] | key[32] | created u64 BE)
///
/// current first. A key is the current one for `Limits.relayResumeKeyRotationSeconds`,
/// then the previous one for as long again; a credential lives at most
/// `Limits.relayResumeLifetimeSeconds` (no longer than a rotation period), so every
/// credential that has not expired opens with one of the two. A missing or unreadable
/// file means a fresh key: devices then come back with a full handshake, once.
final class ResumeKeyStore {
    struct Key {
        var id: [UInt8]
        var key: [UInt8]
        var created: Int64
    }

    static let magic: [UInt8] = Array("AGRK".utf8) + [1]
    let path: String
    let rotationSeconds: Int64
    /// Current first, then the previous one if any.
    private(set) var keys: [Key] = []
    let sealer: ResumeKeys

    init(path: String, rotationSeconds: Int64 = Limits.relayResumeKeyRotationSeconds) throws(CryptoError) {
        self.path = path
        self.rotationSeconds = rotationSeconds
        sealer = try ResumeKeys()
    }

    /// Reads the file (nil if there is none or it does not parse).
    static func parse(_ b: [UInt8]) -> [Key]? {
        guard b.count >= 6, Array(b[0..<5]) == magic else { return nil }
        let n = Int(b[5])
        guard n >= 1 && n <= 2, b.count == 6 + n * 44 else { return nil }
        var out: [Key] = []
        for i in 0..<n {
            let o = 6 + i * 44
            var t: UInt64 = 0
            for j in 0..<8 { t = t << 8 | UInt64(b[o + 36 + j]) }
            out.append(Key(id: Array(b[o..<(o + 4)]), key: Array(b[(o + 4)..<(o + 36)]), created: Int64(bitPattern: t)))
        }
        return out
    }

    static func encode(_ keys: [Key]) -> [UInt8] {
        var o = magic + [UInt8(keys.count)]
        for k in keys {
            o += k.id + k.key
            appendU64(&o, UInt64(bitPattern: k.created))
        }
        return o
    }

    /// Loads the file, or starts with a fresh key (and writes it); rotates if due.
    /// Returns what happened, for the start log line.
    func load(rng: Rng, now: Int64) throws(StartupError) -> String {
        var what = "loaded"
        if Files.exists(path) {
            if let b = try? Files.read(path, limit: 4096), let k = ResumeKeyStore.parse(b) {
                keys = k
            } else {
                what = "unreadable_replaced"
            }
        } else {
            what = "created"
        }
        if keys.isEmpty {
            keys = [ResumeKeyStore.fresh(rng: rng, now: now)]
            do throws(SysError) { try save() } catch {
                throw StartupError(path + ": " + error.message)
            }
        }
        do throws(CryptoError) { try install() } catch {
            throw StartupError(path + ": " + error.message)
        }
        if rotateIfDue(rng: rng, now: now) { what += "_rotated" }
        return what
    }

    static func fresh(rng: Rng, now: Int64) -> Key {
        Key(id: rng.bytes(ResumeKeys.keyIDBytes), key: rng.bytes(ResumeKeys.keyBytes), created: now)
    }

    /// A new current key once the current one is `rotationSeconds` old (the current one
    /// becomes the previous one). True if it rotated. If the file cannot be written the
    /// keys stay as they were (credentials keep working; it is tried again next time).
    @discardableResult
    func rotateIfDue(rng: Rng, now: Int64) -> Bool {
        guard let cur = keys.first, now - cur.created >= rotationSeconds || now < cur.created else { return false }
        var next = ResumeKeyStore.fresh(rng: rng, now: now)
        while next.id == cur.id { next = ResumeKeyStore.fresh(rng: rng, now: now) }
        let old = keys
        keys = [next, cur]
        do throws(SysError) {
            try save()
            try? install()
        } catch {
            keys = old
            Log.warn("resume_key_rotation_failed", "file=" + Log.quote(path) + " error=" + Log.quote(error.message))
            return false
        }
        Log.info("resume_key_rotated", "file=" + Log.quote(path))
        return true
    }

    func save() throws(SysError) {
        try Files.writeAtomically(path, ResumeKeyStore.encode(keys), mode: 0o600)
    }

    func install() throws(CryptoError) {
        for slot in 0..<2 {
            if slot < keys.count {
                try sealer.setKey(slot: slot, id: keys[slot].id, key: keys[slot].key)
            } else {
                try sealer.setKey(slot: slot, id: [0, 0, 0, 0], key: nil)
            }
        }
    }

    /// A fresh credential for an agent just admitted: (lifetime, psk, identity), nil if
    /// sealing failed.
    func issue(id: AgentID, role: AgentRole, rng: Rng, now: Int64,
               lifetime: Int64 = Limits.relayResumeLifetimeSeconds) -> ResumeMessage? {
        rotateIfDue(rng: rng, now: now)
        let life = min(lifetime, rotationSeconds)
        let psk = rng.bytes(ResumeKeys.pskBytes)
        guard let identity = sealer.seal(id: id, role: role, issuedAt: now, expiresAt: now + life, psk: psk) else {
            return nil
        }
        return ResumeMessage(lifetimeSeconds: UInt32(clamping: life), psk: psk, identity: identity)
    }
}
