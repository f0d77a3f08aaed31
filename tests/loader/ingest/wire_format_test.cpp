// The decoder workers' wire format (loader/src/ingest/wire_format.h): what one side encodes the
// other decodes field for field, and a reply that is malformed, out of range or of the wrong
// size is a WireError naming what is wrong, never anything the scan trusts.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "medload/core/error.h"
#include "wire_format.h"

namespace medload::loader::detail::wire {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::vector<char> bytes_of(const std::string& text) { return {text.begin(), text.end()}; }

// A reply with one decoded 2 x 3 uint16 frame (a MONOCHROME1 frame with a VOI table).
Reply decoded_reply() {
  Reply reply;
  reply.outcome.path = "a/b.dcm";
  reply.outcome.ok = true;
  reply.outcome.frames = 1;
  reply.outcome.height = 2;
  reply.outcome.width = 3;
  reply.outcome.bits_stored = 12;
  reply.outcome.format = "dicom";
  reply.outcome.warnings = {"extension_mismatch"};
  reply.outcome.content_hash = 0xFEDCBA9876543210u;
  reply.outcome.pixel_hash = 42;
  FrameHeader header;
  DecodedImage& f = header.frame;
  f.height = 2;
  f.width = 3;
  f.type = PixelType::kUInt16;
  f.bits_stored = 12;
  f.was_monochrome1 = true;
  f.monochrome1_mirror = 4095;
  f.voi = VoiTransform{VoiTransform::Function::kTable, 0, 0, -1024, 12, {0, 17, 4095}};
  f.source_path = "a/b.dcm";
  f.source_hash = 0xFEDCBA9876543210u;
  f.frame_count = 1;
  f.format = "dicom";
  f.info.labels = {"pneumonia"};
  f.info.unknown_labels = {"effusion"};
  f.info.patient_id = "P1";
  f.info.metadata = {{"age", "61"}};
  header.bytes = 2 * 3 * 2;
  reply.frames.push_back(header);
  return reply;
}

Reply decode(const Reply& reply) { return decode_reply(bytes_of(encode(reply)), ValidationOptions{}); }

// The WireError's message decode_reply gives for `text` (empty when it accepts it).
std::string rejection(const std::string& text, const ValidationOptions& options = {}) {
  try {
    decode_reply(bytes_of(text), options);
  } catch (const WireError& e) {
    return e.what();
  }
  return "";
}

std::string rejection(const Reply& reply, const ValidationOptions& options = {}) {
  return rejection(encode(reply), options);
}

TEST(WireFormat, AReplyWithADecodedFrameComesBackFieldForField) {
  const Reply sent = decoded_reply();
  const Reply got = decode(sent);
  EXPECT_EQ(got.outcome.path, "a/b.dcm");
  EXPECT_TRUE(got.outcome.ok);
  EXPECT_FALSE(got.outcome.reason);
  EXPECT_EQ(got.outcome.bits_stored, 12);
  EXPECT_EQ(got.outcome.warnings, sent.outcome.warnings);
  EXPECT_EQ(got.outcome.content_hash, 0xFEDCBA9876543210u);
  EXPECT_EQ(got.outcome.pixel_hash, 42u);
  EXPECT_FALSE(got.shared);
  EXPECT_FALSE(got.stage_failure);
  ASSERT_EQ(got.frames.size(), 1u);
  const DecodedImage& f = got.frames[0].frame;
  EXPECT_EQ(got.frames[0].bytes, 12u);
  EXPECT_FALSE(got.frames[0].staged);
  EXPECT_EQ(f.type, PixelType::kUInt16);
  EXPECT_TRUE(f.was_monochrome1);
  EXPECT_EQ(f.monochrome1_mirror, 4095);
  ASSERT_TRUE(f.voi);
  EXPECT_EQ(f.voi->function, VoiTransform::Function::kTable);
  EXPECT_EQ(f.voi->first_mapped, -1024);
  EXPECT_EQ(f.voi->table, (std::vector<std::uint16_t>{0, 17, 4095}));
  EXPECT_EQ(f.source_hash, 0xFEDCBA9876543210u);
  EXPECT_EQ(f.info.labels, sent.frames[0].frame.info.labels);
  EXPECT_EQ(f.info.unknown_labels, sent.frames[0].frame.info.unknown_labels);
  EXPECT_EQ(f.info.metadata, sent.frames[0].frame.info.metadata);
  EXPECT_TRUE(f.pixels.empty());
}

TEST(WireFormat, AStagedFrameComesBackFieldForField) {
  Reply sent = decoded_reply();
  StagedFrame staged;
  staged.height = 256;
  staged.width = 255;
  staged.channels = 3;
  staged.type = PixelType::kUInt16;
  staged.geometry = Geometry{2, 3, 1, 0, 2, 2, 128.0, 0, 0, 1, 2};
  staged.times.letterbox_ns = 123456789012;
  staged.times.total_ns = 5;
  staged.checksum = 0xFFFFFFFFFFFFFFFFu;
  staged.decoded_hash = 9;
  sent.frames[0].staged = staged;
  sent.frames[0].bytes = 7;  // a stage's output has its own size
  const Reply got = decode(sent);
  ASSERT_EQ(got.frames.size(), 1u);
  ASSERT_TRUE(got.frames[0].staged);
  const StagedFrame& s = *got.frames[0].staged;
  EXPECT_EQ(got.frames[0].bytes, 7u);
  EXPECT_EQ(s.height, 256);
  EXPECT_EQ(s.width, 255);
  EXPECT_EQ(s.channels, 3);
  EXPECT_EQ(s.type, PixelType::kUInt16);
  EXPECT_EQ(s.geometry.to_json(), staged.geometry.to_json());
  EXPECT_EQ(s.times.to_json(), staged.times.to_json());
  EXPECT_EQ(s.checksum, 0xFFFFFFFFFFFFFFFFu);
  EXPECT_EQ(s.decoded_hash, 9u);
}

TEST(WireFormat, ARequestKeepsAFileNameThatIsNotUtf8ByteForByte) {
  Request sent;
  sent.source.path = std::string("/data/caf\xE9 100%.png");
  sent.source.report_path = "caf\xEF\xBF\xBD 100%.png";
  sent.source.info.site = "north";
  sent.source.outside_root = true;
  sent.slot = 1;
  const std::string text = encode(sent);
  const Request got = decode_request(bytes_of(text));
  EXPECT_EQ(got.source.path, sent.source.path);
  EXPECT_EQ(got.source.report_path, sent.source.report_path);
  EXPECT_EQ(got.source.info.site, "north");
  EXPECT_TRUE(got.source.outside_root);
  EXPECT_EQ(got.slot, 1u);
}

TEST(WireFormat, ARejectionKeepsItsReason) {
  Reply sent;
  sent.outcome.reason = Reason::kDecoderCrash;
  sent.outcome.detail = "it crashed";
  const Reply got = decode(sent);
  ASSERT_TRUE(got.outcome.reason);
  EXPECT_EQ(*got.outcome.reason, Reason::kDecoderCrash);
  EXPECT_EQ(got.outcome.detail, "it crashed");
}

TEST(WireFormat, AStageFailureIsRethrownAsItsOwnType) {
  Reply sent;
  sent.stage_failure = StageFailure::from(FormatError("preprocess: bad image"));
  const Reply got = decode(sent);
  ASSERT_TRUE(got.stage_failure);
  EXPECT_THROW(got.stage_failure->rethrow(), FormatError);
  EXPECT_THROW(StageFailure::from(ConfigError("c")).rethrow(), ConfigError);
  EXPECT_THROW(StageFailure::from(IoError("i")).rethrow(), IoError);
  try {
    StageFailure::from(std::runtime_error("plain")).rethrow();
    ADD_FAILURE() << "no exception";
  } catch (const FormatError&) {
    ADD_FAILURE() << "a plain exception came back as a FormatError";
  } catch (const WorkerError& e) {
    EXPECT_STREQ(e.what(), "plain");
  }
}

TEST(WireFormat, TextThatIsNoReplyIsAWireError) {
  EXPECT_TRUE(contains(rejection("not json"), "malformed")) << rejection("not json");
  EXPECT_TRUE(contains(rejection("{}"), "outcome")) << rejection("{}");
  std::string text = encode(decoded_reply());
  text.replace(text.find("\"height\":2"), 10, "\"height\":\"2\"");
  EXPECT_TRUE(contains(rejection(text), "malformed")) << rejection(text);
  const std::string truncated = encode(decoded_reply()).substr(0, 40);
  EXPECT_TRUE(contains(rejection(truncated), "malformed")) << rejection(truncated);
}

TEST(WireFormat, AnEnumPastItsLastValueIsAWireError) {
  std::string text = encode(decoded_reply());
  text.replace(text.find("\"type\":1"), 8, "\"type\":9");
  EXPECT_TRUE(contains(rejection(text), "type 9")) << rejection(text);
  Reply crash;
  crash.outcome.reason = Reason::kOutsideRoot;
  text = encode(crash);
  text.replace(text.find("\"reason\":9"), 10, "\"reason\":10");
  EXPECT_TRUE(contains(rejection(text), "reason 10")) << rejection(text);
}

TEST(WireFormat, ADecodedFrameMustAnnounceExactlyItsPixelBytes) {
  Reply reply = decoded_reply();
  EXPECT_EQ(rejection(reply), "");
  reply.frames[0].bytes = 13;
  EXPECT_TRUE(contains(rejection(reply), "announces 13 pixel bytes; its shape needs 12")) << rejection(reply);
  reply.frames[0].bytes = 0;
  reply.frames[0].frame.height = 0;
  EXPECT_TRUE(contains(rejection(reply), "0x3x1")) << rejection(reply);
}

TEST(WireFormat, ADecodedFramePastMaxPixelsIsAWireError) {
  Reply reply = decoded_reply();
  ValidationOptions options;
  options.max_pixels = 5;  // the frame has 6
  EXPECT_TRUE(contains(rejection(reply, options), "validate.max_pixels 5")) << rejection(reply, options);
}

TEST(WireFormat, PayloadsInSharedMemoryMustFitTheSlot) {
  Reply reply;
  for (int k = 0; k < 2; ++k) {
    FrameHeader header;
    header.staged = StagedFrame{};
    header.bytes = kSlotBytes / 2 + 1;
    reply.frames.push_back(header);
  }
  reply.shared = false;
  EXPECT_EQ(rejection(reply), "");  // through the socket, any size up to the limit
  reply.shared = true;
  EXPECT_TRUE(contains(rejection(reply), "does not fit its shared memory slot")) << rejection(reply);
  reply.shared = false;
  reply.frames[0].bytes = kMaxStagedBytes + 1;
  EXPECT_TRUE(contains(rejection(reply), "stage output of")) << rejection(reply);
}

TEST(WireFormat, AStageFailureWithFramesIsAWireError) {
  Reply reply = decoded_reply();
  reply.stage_failure = StageFailure{StageFailure::Kind::kOther, "x"};
  EXPECT_TRUE(contains(rejection(reply), "both a stage error and frames")) << rejection(reply);
}

// A connected socket pair, closed when the test ends.
struct SocketPair {
  int fds[2] = {-1, -1};
  SocketPair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0); }
  ~SocketPair() {
    for (int fd : fds) ::close(fd);
  }
};

TEST(WireFormat, FramedMessagesArriveWholeAndInOrder) {
  SocketPair pair;
  const std::vector<std::uint8_t> pixels = {1, 2, 3, 250};
  ASSERT_TRUE(send_message(pair.fds[0], std::string("header")));
  ASSERT_TRUE(send_message(pair.fds[0], pixels.data(), pixels.size()));
  std::vector<char> header;
  ASSERT_EQ(read_header(pair.fds[1], header, kNoDeadline), ReadStatus::kOk);
  EXPECT_EQ(std::string(header.begin(), header.end()), "header");
  std::vector<std::uint8_t> payload;
  ASSERT_EQ(read_payload(pair.fds[1], payload, 4, kNoDeadline), ReadStatus::kOk);
  EXPECT_EQ(payload, pixels);
  ::close(pair.fds[0]);
  pair.fds[0] = -1;
  EXPECT_EQ(read_header(pair.fds[1], header, kNoDeadline), ReadStatus::kClosed);
}

TEST(WireFormat, AShortMessageIsClosedAndASilentPeerTimesOut) {
  SocketPair pair;
  const auto soon = [] { return std::chrono::steady_clock::now() + std::chrono::milliseconds(50); };
  std::vector<char> header;
  EXPECT_EQ(read_header(pair.fds[1], header, soon()), ReadStatus::kTimedOut);
  const std::uint64_t length = 10;
  ASSERT_EQ(::write(pair.fds[0], &length, sizeof length), static_cast<ssize_t>(sizeof length));
  ASSERT_EQ(::write(pair.fds[0], "abc", 3), 3);
  EXPECT_EQ(read_header(pair.fds[1], header, soon()), ReadStatus::kTimedOut);
  ::close(pair.fds[0]);
  pair.fds[0] = -1;
  EXPECT_EQ(read_header(pair.fds[1], header, kNoDeadline), ReadStatus::kClosed);
}

TEST(WireFormat, AnOversizedOrMislabelledLengthIsAWireErrorBeforeAnyAllocation) {
  SocketPair pair;
  const std::uint64_t huge = std::uint64_t{1} << 62;
  ASSERT_EQ(::write(pair.fds[0], &huge, sizeof huge), static_cast<ssize_t>(sizeof huge));
  std::vector<char> header;
  try {
    read_header(pair.fds[1], header, kNoDeadline);
    ADD_FAILURE() << "no exception";
  } catch (const WireError& e) {
    EXPECT_TRUE(contains(e.what(), std::to_string(huge))) << e.what();
  }
  EXPECT_TRUE(header.empty());
  const std::uint64_t five = 5;
  ASSERT_EQ(::write(pair.fds[0], &five, sizeof five), static_cast<ssize_t>(sizeof five));
  std::vector<std::uint8_t> payload;
  try {
    read_payload(pair.fds[1], payload, 4, kNoDeadline);
    ADD_FAILURE() << "no exception";
  } catch (const WireError& e) {
    EXPECT_TRUE(contains(e.what(), "announces 5 bytes; its frame header said 4")) << e.what();
  }
}

}  // namespace
}  // namespace medload::loader::detail::wire
