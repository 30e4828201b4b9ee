import Crypto
import Loop
import Wire

/// The relay's resume keys (docs/SECURITY.md, section 3.2): the current key seals the
/// credentials the relay hands out, the previous one still opens them. Kept in
/// `--state/resume-keys` (0600, written atomically: temp file, fsync, rename; layout in
/// Sources/CShims/shims.c) so a restarted relay, even after kill -9, still admits its
/// devices without public-key work. The relay keeps nothing per device.
///
/// A key is the current one for `Limits.relayResumeKeyRotationSeconds`, then the
/// previous one for as long again; a credential lives at most
/// `Limits.relayResumeLifetimeSeconds`, cut to the rotation period, so every credential
/// that has not expired opens with one of the two. A missing or unreadable file means a
/// fresh key: devices then come back with a full handshake, once.
final class ResumeKeyStore {
    let path: String
    let rotationSeconds: Int64
    let sealer: ResumeKeys
    /// The file's bytes, and when its current key was made (UNIX seconds).
    private(set) var image: [UInt8] = []
    private(set) var created: Int64 = 0

    /// Loads the file, or starts with a fresh key if there is none or it is not a key
    /// file (and writes it: `resume_key_new` in the log); rotates if due.
    init(path: String, now: Int64, rotationSeconds: Int64 = Limits.relayResumeKeyRotationSeconds) throws(StartupError) {
        self.path = path
        self.rotationSeconds = rotationSeconds
        do throws(CryptoError) { sealer = try ResumeKeys() } catch {
            throw StartupError(path + ": " + error.message)
        }
        if let b = try? Files.read(path, limit: 4096), let t = sealer.load(b) { (image, created) = (b, t) }
        if image.isEmpty && !rotate(now: now) { throw StartupError(path + ": cannot write the resume keys") }
        rotateIfDue(now: now)
    }

    /// A new current key once the current one is `rotationSeconds` old (or from the
    /// future: the clock went back). True if it rotated.
    @discardableResult
    func rotateIfDue(now: Int64) -> Bool {
        guard now - created >= rotationSeconds || now < created else { return false }
        return rotate(now: now)
    }

    /// A fresh current key, the current one kept as the previous. If the file cannot be
    /// written the installed keys stay as they were (tried again at the next credential).
    private func rotate(now: Int64) -> Bool {
        guard let next = sealer.rotate(image, now: now) else { return false }
        do throws(SysError) {
            try Files.writeAtomically(path, next, mode: 0o600)
        } catch {
            _ = sealer.load(image)
            Log.warn("resume_key_write_failed", "file=" + Log.quote(path) + " error=" + Log.quote(error.message))
            return false
        }
        (image, created) = (next, now)
        Log.info("resume_key_new", "file=" + Log.quote(path) + " keys=" + String(next[5]))
        return true
    }

    /// A fresh credential for an agent just admitted, as a RESUME payload (nil if
    /// sealing failed).
    func issue(id: AgentID, role: AgentRole, now: Int64, lifetime: Int64 = Limits.relayResumeLifetimeSeconds) -> [UInt8]? {
        rotateIfDue(now: now)
        return sealer.issue(id: id, role: role, now: now, lifetime: UInt32(clamping: min(lifetime, rotationSeconds)))
    }
}
