import Crypto
import Testing

/// SubjectAltName.ipAddresses reads the iPAddress entries that mbedTLS 2.28 never checks
/// (issue 12, finding 6). The certificates were made by openssl from a test CA:
///   ip:   subjectAltName=DNS:relay.test,IP:127.0.0.1,IP:::1,email:a@b.c
///   crit: subjectAltName=critical,IP:10.1.2.3
///   dns:  subjectAltName=DNS:127.0.0.1 (a DNS name that looks like an address: not an IP entry)
///   ku:   keyUsage and extendedKeyUsage, no subjectAltName
///   none: no extensions at all
@Suite struct SubjectAltNameTests {
    static let ipPEM = """
        -----BEGIN CERTIFICATE-----
        MIIBqTCCAU6gAwIBAgIUbvK7gm8tP0sAQXLqDbjMd50sUjUwCgYIKoZIzj0EAwIw
        DzENMAsGA1UEAwwEdC1jYTAgFw0yNjEyMDUxNDI5MTVaGA8yMTI2MTExMTE0Mjkx
        NVowEDEOMAwGA1UEAwwFcmVsYXkwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATT
        3LVjU7QtfZNeU81PF7hYfTcmujl/opPLSNZw4O27IbMd9QpuuQOHsiPbRqNo7GiQ
        Rs17h6fLdiyDVgZkFgaXo4GEMIGBMDQGA1UdEQQtMCuCCnJlbGF5LnRlc3SHBH8A
        AAGHEAAAAAAAAAAAAAAAAAAAAAGBBWFAYi5jMAkGA1UdEwQCMAAwHQYDVR0OBBYE
        FFN6TQVbp6TuVJJ8S6jeJsZyaisRMB8GA1UdIwQYMBaAFLxNY0oHRTK6gtSwzN7g
        HmB/+rjJMAoGCCqGSM49BAMCA0kAMEYCIQCY9WnU+lEU+vUfqc+RgSkdNmxk4Ga8
        xms5Q4ia5W3qfgIhAKB3+wTAhBLvKk+DvYCzR+/HJEOfZeC5FaZ2rzL0W8mF
        -----END CERTIFICATE-----
        """
    static let critPEM = """
        -----BEGIN CERTIFICATE-----
        MIIBeTCCAR+gAwIBAgIUbvK7gm8tP0sAQXLqDbjMd50sUjYwCgYIKoZIzj0EAwIw
        DzENMAsGA1UEAwwEdC1jYTAgFw0yNjEyMDUxNDI5MTZaGA8yMTI2MTExMTE0Mjkx
        NlowEDEOMAwGA1UEAwwFcmVsYXkwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATT
        3LVjU7QtfZNeU81PF7hYfTcmujl/opPLSNZw4O27IbMd9QpuuQOHsiPbRqNo7GiQ
        Rs17h6fLdiyDVgZkFgaXo1YwVDASBgNVHREBAf8ECDAGhwQKAQIDMB0GA1UdDgQW
        BBRTek0FW6ek7lSSfEuo3ibGcmorETAfBgNVHSMEGDAWgBS8TWNKB0UyuoLUsMze
        4B5gf/q4yTAKBggqhkjOPQQDAgNIADBFAiEAo0jG1gmacQ5N7aTGX5zRuX2Iw+Zc
        wBOxCMFz7y5dbsYCIH1uopVO+TJUJvKDyjJhbLkls4xXKjrIpST8P93u++rc
        -----END CERTIFICATE-----
        """
    static let dnsPEM = """
        -----BEGIN CERTIFICATE-----
        MIIBfDCCASGgAwIBAgIUbvK7gm8tP0sAQXLqDbjMd50sUjgwCgYIKoZIzj0EAwIw
        DzENMAsGA1UEAwwEdC1jYTAgFw0yNjEyMDUxNDI5MTZaGA8yMTI2MTExMTE0Mjkx
        NlowEDEOMAwGA1UEAwwFcmVsYXkwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATT
        3LVjU7QtfZNeU81PF7hYfTcmujl/opPLSNZw4O27IbMd9QpuuQOHsiPbRqNo7GiQ
        Rs17h6fLdiyDVgZkFgaXo1gwVjAUBgNVHREEDTALggkxMjcuMC4wLjEwHQYDVR0O
        BBYEFFN6TQVbp6TuVJJ8S6jeJsZyaisRMB8GA1UdIwQYMBaAFLxNY0oHRTK6gtSw
        zN7gHmB/+rjJMAoGCCqGSM49BAMCA0kAMEYCIQD7CtxeYCKYspiL6lXJhGABE2RI
        e70JYj8LD1G3OYHtmwIhALJbCMRdhHZKQonBDFwxrsi+sqX/mQxZMFacS9uEeBhh
        -----END CERTIFICATE-----
        """
    static let kuPEM = """
        -----BEGIN CERTIFICATE-----
        MIIBhzCCAS2gAwIBAgIUbvK7gm8tP0sAQXLqDbjMd50sUjkwCgYIKoZIzj0EAwIw
        DzENMAsGA1UEAwwEdC1jYTAgFw0yNjEyMDUxNDI5MjFaGA8yMTI2MTExMTE0Mjky
        MVowEDEOMAwGA1UEAwwFcmVsYXkwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATT
        3LVjU7QtfZNeU81PF7hYfTcmujl/opPLSNZw4O27IbMd9QpuuQOHsiPbRqNo7GiQ
        Rs17h6fLdiyDVgZkFgaXo2QwYjALBgNVHQ8EBAMCB4AwEwYDVR0lBAwwCgYIKwYB
        BQUHAwEwHQYDVR0OBBYEFFN6TQVbp6TuVJJ8S6jeJsZyaisRMB8GA1UdIwQYMBaA
        FLxNY0oHRTK6gtSwzN7gHmB/+rjJMAoGCCqGSM49BAMCA0gAMEUCIBYm6HzLk8mR
        VBcNvDNaiK+/CgwFXF0fNR9qvNvq5Mq4AiEA0BiexZvZsCV/QKdAOMOEGxpzSH99
        rS3ZWVZZboXHl1o=
        -----END CERTIFICATE-----
        """
    static let nonePEM = """
        -----BEGIN CERTIFICATE-----
        MIIBfTCCASOgAwIBAgIUbvK7gm8tP0sAQXLqDbjMd50sUjcwCgYIKoZIzj0EAwIw
        DzENMAsGA1UEAwwEdC1jYTAgFw0yNjEyMDUxNDI5MTZaGA8yMTI2MTExMTE0Mjkx
        NlowEDEOMAwGA1UEAwwFcmVsYXkwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATT
        3LVjU7QtfZNeU81PF7hYfTcmujl/opPLSNZw4O27IbMd9QpuuQOHsiPbRqNo7GiQ
        Rs17h6fLdiyDVgZkFgaXo1owWDAJBgNVHRMEAjAAMAsGA1UdDwQEAwIHgDAdBgNV
        HQ4EFgQUU3pNBVunpO5UknxLqN4mxnJqKxEwHwYDVR0jBBgwFoAUvE1jSgdFMrqC
        1LDM3uAeYH/6uMkwCgYIKoZIzj0EAwIDSAAwRQIhANa1IdsBfFxJY9zzjEYBC0xq
        5pI2e77hSwW9zCDKeJcwAiA8Ci91S6oT8U52vPIm/IRQfVi2zqA7HG4sf2jfqard
        lA==
        -----END CERTIFICATE-----
        """

    static func der(_ pem: String) throws -> [UInt8] {
        try Certificate.parse(Array(pem.utf8)).leafDER
    }

    static let v4: [UInt8] = [127, 0, 0, 1]
    static let v6: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]

    @Test func readsTheIPAddressEntriesOnly() throws {
        #expect(SubjectAltName.ipAddresses(certificateDER: try Self.der(Self.ipPEM)) == [Self.v4, Self.v6])
        #expect(SubjectAltName.contains(ip: Self.v4, certificateDER: try Self.der(Self.ipPEM)))
        #expect(SubjectAltName.contains(ip: Self.v6, certificateDER: try Self.der(Self.ipPEM)))
        #expect(!SubjectAltName.contains(ip: [127, 0, 0, 2], certificateDER: try Self.der(Self.ipPEM)))
        #expect(!SubjectAltName.contains(ip: [10, 1, 2, 3], certificateDER: try Self.der(Self.ipPEM)))
    }

    @Test func aCriticalExtensionIsRead() throws {
        #expect(SubjectAltName.ipAddresses(certificateDER: try Self.der(Self.critPEM)) == [[10, 1, 2, 3]])
    }

    @Test func certificatesWithoutIPEntriesNameNoAddress() throws {
        for pem in [Self.dnsPEM, Self.kuPEM, Self.nonePEM] {
            #expect(SubjectAltName.ipAddresses(certificateDER: try Self.der(pem)) == [])
            #expect(!SubjectAltName.contains(ip: Self.v4, certificateDER: try Self.der(pem)))
        }
    }

    @Test func malformedInputIsNeverAMatch() throws {
        let good = try Self.der(Self.ipPEM)
        // Every truncation: no crash, and never a match (the outer length no longer fits).
        for n in 0..<good.count {
            let cut = Array(good[0..<n])
            #expect(!SubjectAltName.contains(ip: Self.v4, certificateDER: cut))
            #expect(SubjectAltName.ipAddresses(certificateDER: cut) == nil)
        }
        // One trailing byte after the certificate.
        #expect(SubjectAltName.ipAddresses(certificateDER: good + [0]) == nil)
        // An iPAddress entry that is neither 4 nor 16 bytes long makes the extension malformed.
        if let i = Self.find(good, [0x87, 0x04, 0x7f, 0x00, 0x00, 0x01]) {
            var bad = good
            bad[i + 1] = 0x03  // a 3-byte address (the last byte then reads as the next tag)
            #expect(SubjectAltName.ipAddresses(certificateDER: bad) == nil)
        } else {
            Issue.record("the test certificate has no 127.0.0.1 entry")
        }
        for junk in [[UInt8](), [0x30], [0x30, 0x00], [0x30, 0x84, 0xff, 0xff, 0xff, 0xff], [0x04, 0x01, 0x00]] {
            #expect(SubjectAltName.ipAddresses(certificateDER: junk) == nil)
            #expect(!SubjectAltName.contains(ip: Self.v4, certificateDER: junk))
        }
    }

    static func find(_ hay: [UInt8], _ needle: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
        return nil
    }
}
