import Crypto
import Glibc
import Loop
@testable import Roles
import Testing
import Wire

/// The relay's admission decision as a pure function (review findings 2 and 8): roles from
/// the registry, the token and the certificate; single-use tokens; hostnames to the first key.
@Suite struct AdmissionTests {
    final class World {
        let rng: Rng
        let dir: String
        let registry: Registry
        let secret: [UInt8] = Array("0123456789abcdef0123456789abcdef".utf8)
        let caKey: PrivateKey
        let ca: Certificate
        let now = Clock.wallSeconds()

        init() throws {
            rng = try Rng()
            dir = "/tmp/agent-admission-" + String(rng.bytes(6).reduce(0) { $0 << 8 | UInt64($1) }, radix: 16)
            try Files.makeDirectory(dir, mode: 0o700)
            registry = try Registry.load(dir + "/registry")
            caKey = try PrivateKey.generate(rng: rng)
            ca = try Certificate.parse(try CertificateAuthority.makeCA(key: caKey, name: "fleet CA", now: now, rng: rng))
        }

        deinit {
            Files.remove(dir + "/registry")
            _ = rmdir(dir)
        }

        /// A key and its self-signed certificate (what an agent without --cert presents).
        func agent() throws -> (AgentID, Certificate) {
            let k = try PrivateKey.generate(rng: rng)
            return (k.id, try CertificateWriter.selfSigned(key: k, rng: rng))
        }

        /// A key with a certificate from the fleet CA in `role`.
        func agent(certified role: AgentRole, names: [String] = []) throws -> (AgentID, Certificate) {
            let k = try PrivateKey.generate(rng: rng)
            let der = try CertificateAuthority.issue(subject: try PublicKey.parse(spki: k.publicKeyDER()), name: "x", role: role,
                                                     dnsNames: names, days: 1, now: now, caKey: caKey, caCert: ca, rng: rng)
            return (k.id, try Certificate.parse(der))
        }

        func token(role: AgentRole = .reverse, device: AgentID? = nil, hostnames: [String] = [], uses: Int = 1) -> [UInt8] {
            Array(EnrollmentToken(expires: now + 3600, device: device, hostnames: hostnames, nonce: rng.bytes(8), role: role,
                                  uses: device == nil ? uses : 1).sign(secret: secret).utf8)
        }

        func decide(_ id: AgentID, _ chain: Certificate, role: AgentRole, token: [UInt8] = [], hostnames: [String] = [],
                    open: Bool = false, ca useCA: Bool = false, apply: Bool = true) -> String {
            let r = Admission.Request(id: id, role: role, hostnames: hostnames, token: token, chain: chain)
            let p = Admission.Policy(enrollSecret: secret, clientCA: useCA ? ca : nil, openEnrollment: open)
            switch Admission.decide(r, registry: registry, policy: p, wallSeconds: now) {
            case .deny(let why):
                return why
            case .admit(let e, let write, _):
                if apply && write { try? registry.put(e) }
                return "admit via=" + e.via + (e.hostnames.isEmpty ? "" : " hosts=" + Text.join(e.hostnames, ","))
            }
        }
    }

    @Test func aKnownKeyIsAdmittedInItsRoleOnly() throws {
        let w = try World()
        let (id, cert) = try w.agent()
        #expect(w.decide(id, cert, role: .reverse) == "not_enrolled")
        #expect(w.decide(id, cert, role: .reverse, open: true) == "admit via=open")
        #expect(w.decide(id, cert, role: .reverse) == "admit via=open")
        #expect(w.decide(id, cert, role: .forward) == "role_mismatch")
        #expect(w.decide(id, cert, role: .forward, open: true) == "role_mismatch")
    }

    @Test func aTokenEnrolsOneKeyInItsRole() throws {
        let w = try World()
        let t = w.token(role: .reverse, hostnames: ["dev.example.test"])
        let (a, ca) = try w.agent()
        let (b, cb) = try w.agent()
        #expect(w.decide(a, ca, role: .forward, token: t) == "token_wrong_role")
        #expect(w.decide(a, ca, role: .reverse, token: t, hostnames: ["dev.example.test"])
                == "admit via=token hosts=dev.example.test")
        guard case .success(let parsed) = EnrollmentToken.verify(t, secret: w.secret, now: w.now, device: a) else {
            Issue.record("token does not verify")
            return
        }
        #expect(w.registry.keys(enrolledByToken: parsed.idText) == 1)
        // The same token again: the key that used it still gets in; another key does not.
        #expect(w.decide(a, ca, role: .reverse, token: t, hostnames: ["dev.example.test"])
                == "admit via=token hosts=dev.example.test")
        #expect(w.decide(b, cb, role: .reverse, token: t) == "token_used_up")
        // An operator token enrols an operator.
        let (op, cop) = try w.agent()
        #expect(w.decide(op, cop, role: .forward, token: w.token(role: .forward)) == "admit via=token")
    }

    @Test func aTokenForSeveralKeysGivesItsHostnamesToTheFirst() throws {
        let w = try World()
        let t = w.token(hostnames: ["multi.example.test"], uses: 3)
        let keys = try (0..<4).map { _ in try w.agent() }
        #expect(w.decide(keys[0].0, keys[0].1, role: .reverse, token: t, hostnames: ["multi.example.test"])
                == "admit via=token hosts=multi.example.test")
        #expect(w.decide(keys[1].0, keys[1].1, role: .reverse, token: t, hostnames: ["multi.example.test"])
                == "hostname_not_granted")
        #expect(w.decide(keys[1].0, keys[1].1, role: .reverse, token: t) == "admit via=token")
        #expect(w.decide(keys[2].0, keys[2].1, role: .reverse, token: t) == "admit via=token")
        #expect(w.decide(keys[3].0, keys[3].1, role: .reverse, token: t) == "token_used_up")
    }

    @Test func aBoundTokenNamesItsKey() throws {
        let w = try World()
        let (a, ca) = try w.agent()
        let (b, cb) = try w.agent()
        let t = w.token(device: a, hostnames: ["a.example.test"])
        #expect(w.decide(b, cb, role: .reverse, token: t) == "token_wrong_device")
        #expect(w.decide(a, ca, role: .reverse, token: t, hostnames: ["a.example.test"]) == "admit via=token hosts=a.example.test")
    }

    @Test func aCertificateAdmitsInTheRoleItNames() throws {
        let w = try World()
        let (dev, dcert) = try w.agent(certified: .reverse, names: ["d.example.test"])
        let (op, ocert) = try w.agent(certified: .forward)
        #expect(w.decide(dev, dcert, role: .forward, ca: true) == "certificate_wrong_role")
        #expect(w.decide(op, ocert, role: .reverse, ca: true) == "certificate_wrong_role")
        #expect(w.decide(dev, dcert, role: .reverse, hostnames: ["d.example.test"], ca: true)
                == "admit via=ca hosts=d.example.test")
        #expect(w.decide(op, ocert, role: .forward, ca: true) == "admit via=ca")
        // A certificate the CA did not sign admits no one.
        let (other, self_) = try w.agent()
        #expect(w.decide(other, self_, role: .reverse, ca: true) == "not_enrolled_or_bad_ca")
    }

    @Test func aHostnameHasOneOwner() throws {
        let w = try World()
        let (a, ca) = try w.agent()
        let (b, cb) = try w.agent()
        #expect(w.decide(a, ca, role: .reverse, hostnames: ["h.example.test"], open: true) == "admit via=open hosts=h.example.test")
        #expect(w.decide(b, cb, role: .reverse, hostnames: ["h.example.test"], open: true) == "hostname_taken")
        // A token granting a name another key holds does not move it.
        #expect(w.decide(b, cb, role: .reverse, token: w.token(device: b, hostnames: ["h.example.test"])) == "admit via=token")
        #expect(w.registry.owner(ofHostname: "H.example.test") == a)
        // Operators claim no hostnames.
        let (op, cop) = try w.agent()
        #expect(w.decide(op, cop, role: .forward, hostnames: ["x.example.test"], open: true) == "hostname_not_granted")
    }
}
