"""Pure codec tests for the Engine.IO v4 and Socket.IO v5 packet layers."""

import pytest

from nexus_chat.realtime import engineio_packets as eio
from nexus_chat.realtime import socketio_packets as sio
from nexus_chat.realtime.engineio_packets import Frame, Packet, ProtocolError

# ------------------------------------------------------------------ Engine.IO


@pytest.mark.parametrize(
    "ptype, data, wire",
    [
        (eio.OPEN, '{"sid":"x"}', b'0{"sid":"x"}'),
        (eio.CLOSE, "", b"1"),
        (eio.PING, "", b"2"),
        (eio.PING, "probe", b"2probe"),
        (eio.PONG, "", b"3"),
        (eio.PONG, "probe", b"3probe"),
        (eio.MESSAGE, "hello", b"4hello"),
        (eio.MESSAGE, "héllo ✓", "4héllo ✓".encode()),
        (eio.UPGRADE, "", b"5"),
        (eio.NOOP, "", b"6"),
    ],
)
def test_engineio_text_packets_round_trip(ptype, data, wire):
    frame = eio.encode_packet(Packet(ptype, data))
    assert frame == Frame(wire, False)
    assert eio.decode_packet(wire.decode()) == Packet(ptype, data)


def test_engineio_binary_message_is_a_raw_binary_frame():
    assert eio.encode_packet(Packet(eio.MESSAGE, b"\x01\x02")) == Frame(b"\x01\x02", True)
    assert eio.message_frame(b"\x01\x02") == Frame(b"\x01\x02", True)
    assert eio.decode_packet(b"\x01\x02\x03") == Packet(eio.MESSAGE, b"\x01\x02\x03")
    assert eio.decode_packet(b"") == Packet(eio.MESSAGE, b"")


def test_engineio_message_frame_for_text():
    assert eio.message_frame("2hi") == Frame(b"42hi", False)


def test_engineio_binary_only_for_messages():
    with pytest.raises(ProtocolError):
        eio.encode_packet(Packet(eio.PING, b"\x00"))


@pytest.mark.parametrize("bad", ["", "abc", "7", "9x", "-1", " 4hello"])
def test_engineio_decode_rejects_garbage(bad):
    with pytest.raises(ProtocolError):
        eio.decode_packet(bad)


def test_polling_payload_encode():
    frames = [eio.text_frame(eio.MESSAGE, "hello"), eio.message_frame(b"\x01\x02\x03\x04"), eio.text_frame(eio.PING)]
    assert eio.encode_payload(frames) == b"4hello\x1ebAQIDBA==\x1e2"
    assert eio.encode_payload([eio.text_frame(eio.NOOP)]) == b"6"
    assert eio.encode_payload([]) == b""


def test_polling_payload_decode():
    assert eio.decode_payload(b"4hello") == [Packet(eio.MESSAGE, "hello")]
    assert eio.decode_payload("4test1\x1e4test2\x1e4test3") == [
        Packet(eio.MESSAGE, "test1"),
        Packet(eio.MESSAGE, "test2"),
        Packet(eio.MESSAGE, "test3"),
    ]
    assert eio.decode_payload(b"4hello\x1ebAQIDBA==") == [
        Packet(eio.MESSAGE, "hello"),
        Packet(eio.MESSAGE, b"\x01\x02\x03\x04"),
    ]
    assert eio.decode_payload(b"3\x1e1") == [Packet(eio.PONG, ""), Packet(eio.CLOSE, "")]
    assert eio.decode_payload("4é".encode()) == [Packet(eio.MESSAGE, "é")]


@pytest.mark.parametrize("bad", [b"", b"abc", b"4ok\x1e", b"4ok\x1eZ", b"b!!!", b"bAQI", b"\xff\xfe"])
def test_polling_payload_decode_rejects_garbage(bad):
    with pytest.raises(ProtocolError):
        eio.decode_payload(bad)


# ------------------------------------------------------------------ Socket.IO encoding


def enc(ptype, nsp="/", data=None, id=None):
    return sio.encode(sio.Packet(ptype, nsp, data, id))


def test_socketio_encode_connect():
    assert enc(sio.CONNECT) == ["0"]
    assert enc(sio.CONNECT, "/", {"sid": "abc"}) == ['0{"sid":"abc"}']
    assert enc(sio.CONNECT, "/chat", {"sid": "abc"}) == ['0/chat,{"sid":"abc"}']


def test_socketio_encode_disconnect():
    assert enc(sio.DISCONNECT) == ["1"]
    assert enc(sio.DISCONNECT, "/chat") == ["1/chat,"]


def test_socketio_encode_event_and_ack():
    assert enc(sio.EVENT, "/", ["message", 1, "2", {"3": [True]}]) == ['2["message",1,"2",{"3":[true]}]']
    assert enc(sio.EVENT, "/chat", ["sendMessage", {"content": "hi"}], 7) == [
        '2/chat,7["sendMessage",{"content":"hi"}]'
    ]
    assert enc(sio.ACK, "/", [1, "2", {"3": [False]}], 456) == ['3456[1,"2",{"3":[false]}]']
    assert enc(sio.ACK, "/chat", [], 7) == ["3/chat,7[]"]


def test_socketio_encode_connect_error():
    assert enc(sio.CONNECT_ERROR, "/random", {"message": "Invalid namespace"}) == [
        '4/random,{"message":"Invalid namespace"}'
    ]
    assert enc(sio.CONNECT_ERROR, "/chat", {"message": "Unauthorized"}) == ['4/chat,{"message":"Unauthorized"}']


def test_socketio_json_is_compact_and_keeps_non_ascii():
    assert enc(sio.EVENT, "/", ["msg", {"text": "héllo ✓ 你好", "n": [1, 2]}]) == [
        '2["msg",{"text":"héllo ✓ 你好","n":[1,2]}]'
    ]


def test_socketio_encode_binary_event_deconstructs_attachments():
    parts = enc(sio.EVENT, "/", ["message", b"\x01\x02\x03", {"x": b"\x04\x05\x06"}])
    assert parts == [
        '52-["message",{"_placeholder":true,"num":0},{"x":{"_placeholder":true,"num":1}}]',
        b"\x01\x02\x03",
        b"\x04\x05\x06",
    ]


def test_socketio_encode_binary_ack_with_namespace():
    parts = enc(sio.ACK, "/custom", [b"\x01", b"\x02"], 789)
    assert parts == [
        '62-/custom,789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
        b"\x01",
        b"\x02",
    ]


def test_socketio_binary_type_without_binary_data_becomes_plain():
    assert enc(sio.BINARY_EVENT, "/", ["x"]) == ['2["x"]']
    assert enc(sio.BINARY_ACK, "/", [1], 3) == ["33[1]"]


def test_deconstruct_reconstruct_round_trip():
    data = ["ev", {"a": [b"1", {"b": b"22"}]}, bytearray(b"333")]
    shape, attachments = sio.deconstruct(data)
    assert attachments == [b"1", b"22", b"333"]
    assert sio.reconstruct(shape, attachments) == ["ev", {"a": [b"1", {"b": b"22"}]}, b"333"]


# ------------------------------------------------------------------ Socket.IO decoding


def test_socketio_decode_connect_variants():
    assert sio.decode("0") == sio.Packet(sio.CONNECT, "/", None, None)
    assert sio.decode('0{"token":"123"}') == sio.Packet(sio.CONNECT, "/", {"token": "123"})
    assert sio.decode("0/custom,") == sio.Packet(sio.CONNECT, "/custom")
    assert sio.decode("0/custom") == sio.Packet(sio.CONNECT, "/custom")
    assert sio.decode('0/custom,{"token":"abc"}') == sio.Packet(sio.CONNECT, "/custom", {"token": "abc"})


def test_socketio_decode_disconnect():
    assert sio.decode("1") == sio.Packet(sio.DISCONNECT, "/")
    assert sio.decode("1/custom,") == sio.Packet(sio.DISCONNECT, "/custom")


def test_socketio_decode_event_with_ack_id():
    assert sio.decode('2["message",1,"2",{"3":[true]}]') == sio.Packet(
        sio.EVENT, "/", ["message", 1, "2", {"3": [True]}]
    )
    assert sio.decode('2456["message-with-ack",1]') == sio.Packet(sio.EVENT, "/", ["message-with-ack", 1], 456)
    assert sio.decode('2/chat,7["sendMessage",{"content":"hi"}]') == sio.Packet(
        sio.EVENT, "/chat", ["sendMessage", {"content": "hi"}], 7
    )


def test_socketio_decode_ack_and_connect_error():
    assert sio.decode('3456[1,"2"]') == sio.Packet(sio.ACK, "/", [1, "2"], 456)
    assert sio.decode('4/chat,{"message":"Unauthorized"}') == sio.Packet(
        sio.CONNECT_ERROR, "/chat", {"message": "Unauthorized"}
    )


def test_socketio_decode_binary_header():
    packet = sio.decode('52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    assert packet.type == sio.BINARY_EVENT and packet.attachments == 2 and packet.id is None
    packet = sio.decode('62-/custom,789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    assert (packet.type, packet.namespace, packet.id, packet.attachments) == (sio.BINARY_ACK, "/custom", 789, 2)


@pytest.mark.parametrize(
    "bad",
    [
        "",  # empty
        "abc",  # unknown type (the "4abc" Engine.IO message)
        "7",
        "9[]",
        "2{}",  # event payload must be an array
        'abc["message-with-ack",1,"2",{"3":[false]}]',
        '2abc["message-with-ack",1]',  # invalid ack id
        "2[]",  # no event name
        "2[1,2]",  # event name must be a string
        "2[null]",
        '2["connect"]',  # reserved name
        '2["disconnect",1]',
        "2",  # event without payload
        '2["x"',  # bad JSON
        '2["x"]garbage',
        "2[NaN]",
        '0"str"',  # CONNECT payload must be an object
        "0[1]",
        '1{"a":1}',  # DISCONNECT carries no payload
        "3[1]",  # ACK without id
        '3{"a":1}',
        "31",  # ACK without payload
        "4",  # CONNECT_ERROR without payload
        "4[1]",
        '5["x",{"_placeholder":true,"num":0}]',  # missing attachment count
        '5a-["x"]',
        '51["x"]',
        '52-{"a":1}',
        '2' + '1' * 20 + '["x"]',  # absurd ack id
        '59999-["x"]',  # too many attachments
    ],
)
def test_socketio_decode_rejects_invalid(bad):
    with pytest.raises(ProtocolError):
        sio.decode(bad)


def test_decoder_collects_attachments():
    decoder = sio.Decoder()
    assert decoder.feed('52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]') is None
    assert decoder.waiting
    assert decoder.feed(b"\x01\x02\x03") is None
    packet = decoder.feed(b"\x04\x05\x06")
    assert packet == sio.Packet(sio.BINARY_EVENT, "/", ["message", b"\x01\x02\x03", b"\x04\x05\x06"])
    assert not decoder.waiting
    assert decoder.feed('2["next"]') == sio.Packet(sio.EVENT, "/", ["next"])


def test_decoder_binary_ack():
    decoder = sio.Decoder()
    assert decoder.feed('61-/custom,5[{"_placeholder":true,"num":0}]') is None
    assert decoder.feed(b"\xff") == sio.Packet(sio.BINARY_ACK, "/custom", [b"\xff"], 5)


def test_decoder_zero_attachments_completes_at_once():
    assert sio.Decoder().feed('50-["x",1]') == sio.Packet(sio.BINARY_EVENT, "/", ["x", 1])


def test_decoder_rejects_unexpected_binary():
    with pytest.raises(ProtocolError):
        sio.Decoder().feed(b"\x01")


def test_decoder_rejects_text_while_waiting_for_attachments():
    decoder = sio.Decoder()
    decoder.feed('51-["x",{"_placeholder":true,"num":0}]')
    with pytest.raises(ProtocolError):
        decoder.feed('2["y"]')


@pytest.mark.parametrize(
    "placeholder",
    ['{"_placeholder":true,"num":1}', '{"_placeholder":true,"num":-1}', '{"_placeholder":true,"num":"0"}',
     '{"_placeholder":true}'],
)
def test_decoder_rejects_bad_placeholders(placeholder):
    decoder = sio.Decoder()
    decoder.feed(f'51-["x",{placeholder}]')
    with pytest.raises(ProtocolError):
        decoder.feed(b"\x01")


def test_encode_decode_round_trip_with_binary():
    packet = sio.Packet(sio.EVENT, "/chat", ["upload", {"name": "a.png", "bytes": b"\x89PNG"}], 12)
    parts = sio.encode(packet)
    decoder = sio.Decoder()
    results = [decoder.feed(part) for part in parts]
    assert results[:-1] == [None] * (len(parts) - 1)
    assert results[-1] == packet._replace(type=sio.BINARY_EVENT)
