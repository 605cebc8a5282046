"""The published wheels of tinysoundfont 0.3.7 (PyPI, MIT): file name -> (folder on PyPI's file host, sha256).

Copied from https://pypi.org/simple/tinysoundfont/ on 2026-12-01 (facts, not code). The suite fetches the one
matching this interpreter and platform when ``tinysoundfont`` is not installed: its metadata requires
PyAudio (for live playback, which the suite never uses), and PyAudio has no Linux wheel, so a plain
``pip install tinysoundfont`` fails on a machine without the PortAudio headers.
"""
from __future__ import annotations

TINYSOUNDFONT_VERSION = "0.3.7"
# the address of a wheel is FILES_HOST + folder + "/" + file name
FILES_HOST = "https://files.pythonhosted.org/packages/"
TINYSOUNDFONT_WHEELS: dict[str, tuple[str, str]] = {
    "tinysoundfont-0.3.7-cp310-cp310-macosx_11_0_arm64.whl": (
        "a1/9f/9c36ffa2ec0866dd37d214a7a912e9b76891e3331e46ec6ae4c6749fc570",
        "de6a4c411ce69a39a6af27b404c6859dceb49fe27ad22f463314f5da7fe67c0c"),
    "tinysoundfont-0.3.7-cp310-cp310-manylinux_2_17_i686.manylinux2014_i686.whl": (
        "13/d0/28f2bcd0d95f6d1c40076b38d2a8ec69df5766dc39cd8ca53fa262d052df",
        "255bf3a84b4c8653315aa79762610bc8d42a09ee1ff744f9b245f7bef21f3354"),
    "tinysoundfont-0.3.7-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": (
        "93/c1/184e7408d91c1c31fdb42139095f0a2d80d86c6900ae5724ae9a0e1abdda",
        "1d4cc63f6bb851832517ceaf106680051c481be8e313f41ac76e0838d5e2e881"),
    "tinysoundfont-0.3.7-cp310-cp310-musllinux_1_1_i686.whl": (
        "af/57/727ef91b3661c94b17fcef0c9c52a6d4bd0ff6285706b9e77df5b3928990",
        "485c1bd36d383b15bf4e58225e8799b7ddb0e328652340169a1172313fb46888"),
    "tinysoundfont-0.3.7-cp310-cp310-musllinux_1_1_x86_64.whl": (
        "8a/46/b1841bf872859c6df0bb1bc1198050cdbbd4980f8a9789691203c687f6f5",
        "2384cd83b30360cd563b2055b56cfc24c0fd6240e9132ea075db1fa29b10ae8f"),
    "tinysoundfont-0.3.7-cp310-cp310-win32.whl": (
        "b0/c9/26b4931dc428b574865a47d51a45cb43fe595c760246724ed632dbd2267c",
        "2039339689f8a6476b5872f86d93cf13dc310b2820521207bc94b1bce1caa557"),
    "tinysoundfont-0.3.7-cp310-cp310-win_amd64.whl": (
        "34/4a/c79e13cbff31b280dc2431e34c900b530ec561296492f57edaadba5e5827",
        "476a514a84a1696ead37417ddb5005551c880e65de8c53a7ad643c99c45efb5b"),
    "tinysoundfont-0.3.7-cp311-cp311-macosx_11_0_arm64.whl": (
        "f3/75/89def81b8726eacd0d9e6f117aed172ead7a1d454879edea588403f7788d",
        "99650cb625ebfe808fe24ed279b5970a9b0b2133f624dcaceddca4f364bb5fe6"),
    "tinysoundfont-0.3.7-cp311-cp311-manylinux_2_17_i686.manylinux2014_i686.whl": (
        "98/e8/a255386032b9acda3c20ae62b3f751f1c957e55b0e215e5674b9b689e0b6",
        "6e4189786c57d16c269337e60cdb6b46204a75a67748f3bc6e2cc39a5c66d5e3"),
    "tinysoundfont-0.3.7-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": (
        "3c/b7/d5e33d22462d7ddbfaffee6b918d73d72271f051b181d7cc6935724b045a",
        "f638536ce801dd77526419e25a53576ffd4f7d58d6e1673e6b70a1a8c4773448"),
    "tinysoundfont-0.3.7-cp311-cp311-musllinux_1_1_i686.whl": (
        "da/b6/24f6189d573a65cec47513ef2bc9c7fd442861918db385ddd6a42f62c706",
        "64b69f8c1785d3490afe36d7c5656e95de02edbac1b73aa34c0ffd6d18ea4690"),
    "tinysoundfont-0.3.7-cp311-cp311-musllinux_1_1_x86_64.whl": (
        "2c/b3/8e778f7345fbb7c4f50773ed09c77bc48eee2d6d1fcda7a54e5065bdaf69",
        "9860a285d346bb4910a8446efabc5671777e4df9424409e926a4c9a40d4de998"),
    "tinysoundfont-0.3.7-cp311-cp311-win32.whl": (
        "ad/04/3586b7e9c6acfa65dc8101c8f81f28432259ae2b7ad8e8dd4c75a84c88fb",
        "94a341c8c79af3beb29e1e845f5f0fb6668ab650db319021d926109c9fc20230"),
    "tinysoundfont-0.3.7-cp311-cp311-win_amd64.whl": (
        "52/4b/4c086f2190b61339a3fcc2b0a586c9cd05c3d641718a7b5d2d4e0d14caaf",
        "86453db5bb713c28db505f9a9545702942278ce69556b8fd73135ac652fda5b6"),
    "tinysoundfont-0.3.7-cp312-cp312-macosx_11_0_arm64.whl": (
        "64/67/9b07986a5ba6fe93efb02e346ed8824d208ad7c1d22515ebe6c3b60c065a",
        "b871a995adb9ee6e0f14f670311109f48ab6faed7eb746a3ef0be3c5792ad5b7"),
    "tinysoundfont-0.3.7-cp312-cp312-manylinux_2_17_i686.manylinux2014_i686.whl": (
        "a9/fe/289ad2d5712eb670247cc7c2926495cf582da1a5493543fddf46fea8d3cb",
        "8e6efd15ca7f5647db7709e8d73cebce08a56aded46222654272be5f21002779"),
    "tinysoundfont-0.3.7-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": (
        "57/d3/9308fbf4445395ffa3d3cd4fb8c83a85f3b7aa93fa1d9ed1f003e7facdf9",
        "c48a614fbc0287f16ad4bef857c79e80ba9e413474fbe47f460d2dd1ec449d4b"),
    "tinysoundfont-0.3.7-cp312-cp312-musllinux_1_1_i686.whl": (
        "7c/fb/2832235a7ff0d62cf73c0d15a5477d1174854ec1e7911c24c7682b722029",
        "015be0a82b2ccf0810b2f99dfb6597f31b3e9a0349fa850e6ba5a18a28846780"),
    "tinysoundfont-0.3.7-cp312-cp312-musllinux_1_1_x86_64.whl": (
        "7b/58/fceb0e19d3c5a5a5acb95cbfc88e54675efdbd8903860f6797c6efa2f97c",
        "56f190d48865ba06e3b1cdfaab5e35c630a3941687c1d42fd9ae1bb81210d152"),
    "tinysoundfont-0.3.7-cp312-cp312-win32.whl": (
        "0b/f6/344747b94e50cb30fc2f5f61de5355148ffa297461ca33188331f2aac210",
        "72767f4645567dcc7de2966c7d734c6a8da3d7b44c63d93e05b2e6e3e1942110"),
    "tinysoundfont-0.3.7-cp312-cp312-win_amd64.whl": (
        "bd/8e/041e5342fda5215622dcac52efa08b3abb5b17b14f21586cb5b89dee5a3d",
        "402269dc9da85d722697a96254dbd64d57fe083f16e56b662d8ed897f53a1aa0"),
    "tinysoundfont-0.3.7-cp37-cp37m-manylinux_2_17_i686.manylinux2014_i686.whl": (
        "8d/7a/2f54b85959434d1c0b1ad4ef2f99a56e3c09addb64fa6a9af6d9207f3561",
        "8afb7b7b86a4faa788ad182f0a46436624f8830ab29db9cc1c80c8ab617af457"),
    "tinysoundfont-0.3.7-cp37-cp37m-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": (
        "76/eb/fe9fcffb669e622cb2517a9788a15017e030fa6d715b6105e106347ccfa7",
        "fdf8f5ed7c67d0e8af6b9b5a76dd073c273f46897d4b2708057942da855626db"),
    "tinysoundfont-0.3.7-cp37-cp37m-musllinux_1_1_i686.whl": (
        "3c/3c/2f5aa229089f1e254502d538a6978f501eeb1fcce696ae71ce62a66170e7",
        "263bdb5375fffe9fa46fc383401e5d411486ea2c3995b64b20b4086a1e714e84"),
    "tinysoundfont-0.3.7-cp37-cp37m-musllinux_1_1_x86_64.whl": (
        "e5/19/ab8031576319a57b5c8a9668793943aae1c41420f494bf1e861459a82814",
        "6b0863d370a8b0a53ecdc54e5f2ac5c55c637f8cb2fb3e9e1c17329a3671a4c8"),
    "tinysoundfont-0.3.7-cp37-cp37m-win32.whl": (
        "60/08/abee2633f7555ddea50ccfa6d995a098a5814acfe3da8427a6620e0e82b1",
        "270f2cf131e1de1c7592dfa2a480ea0767880d1182feceadba417308e00b78d8"),
    "tinysoundfont-0.3.7-cp37-cp37m-win_amd64.whl": (
        "3c/b2/a747af7dd25b775a4dd0f285db60a975a2a39dd09ccdb9409c437a1c6176",
        "fbe5513e55b69c6eba7ae910b5c15ab4da121796a412b5fc239d4dacbe211759"),
    "tinysoundfont-0.3.7-cp38-cp38-macosx_11_0_arm64.whl": (
        "4d/eb/2dfb38658e45701dd4b43486fc1048366be7950a88649ac9e121c88648b2",
        "65cba2112fe46720545960b08a9b83ced4453d35a479f850cd3f22ce5faa6a02"),
    "tinysoundfont-0.3.7-cp38-cp38-manylinux_2_17_i686.manylinux2014_i686.whl": (
        "2d/6e/6ae89d443b04b84d13eb289aa773b26322fd069c1ee0689b12b31344810d",
        "34256bcabb920a55a316d678047ea14dcdcdee4abd78ddfdfcefd20480e1067b"),
    "tinysoundfont-0.3.7-cp38-cp38-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": (
        "af/a0/f8a52ad1a67095e78756a3bdb814cf4cf1e89f0013bd20b8f0f93c309257",
        "f72cc8e490f08ca8d216831fc46b7bd3dbf2d79cab53ec945ce469c8e1a644c8"),
    "tinysoundfont-0.3.7-cp38-cp38-musllinux_1_1_i686.whl": (
        "84/52/289225c9afde170cee0e3f15f12da5db0e0106adf569af123e536bd2ca60",
        "06d1b97c949641cfb2a94c77a919e86a4a879cab06fe66d934256900c6182192"),
    "tinysoundfont-0.3.7-cp38-cp38-musllinux_1_1_x86_64.whl": (
        "80/4c/1a67d10741734c0cd9e506baf80bd5e7c35c8b1e6c9496a582ebe84cb4e3",
        "cde51bfebb783919ab60e307cae37bebcae44aee099cc37bceab85cce575ff8e"),
    "tinysoundfont-0.3.7-cp38-cp38-win32.whl": (
        "a3/4d/26d17fbb246780c98e13103b2cd9ffb1c112fe13377120083eb6911a3a51",
        "d2d6e4f5b7d65eb00f6ada52ceacefe272127529a906a614d03a96dd3c35c9cb"),
    "tinysoundfont-0.3.7-cp38-cp38-win_amd64.whl": (
        "b2/55/8e0b40deeca84c9fea8010d2040766a60262bbb171ec6c08e561b28a350e",
        "4f7966aac2c5440db770b0a1beb4aaa71b2ef4886811ad6034eed9564232ed2d"),
    "tinysoundfont-0.3.7-cp39-cp39-macosx_11_0_arm64.whl": (
        "a8/63/80c6671d647aba1e7f7f82947f293ddbb0604444a68a61e53cb31866ad68",
        "51d1f10fd258492a7a195fb1e85abaf9f1621196663fcf31a556d84466f84edd"),
    "tinysoundfont-0.3.7-cp39-cp39-manylinux_2_17_i686.manylinux2014_i686.whl": (
        "49/56/0ca2048c79c247151c6d7036dc4f4031002c1ee8e9ac38228bb546064ac9",
        "0a2b1804e6534bc4492dd050e4f8b9fad7587ec492354d685a867cb37dd09150"),
    "tinysoundfont-0.3.7-cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": (
        "e4/c5/4eb1bd854d147f583d6dc61b04a6f847817567f78320eae7de61fac7724b",
        "a767a1999a447338741072704bd9d9f46ea3ff9545202ec451127b17656b5916"),
    "tinysoundfont-0.3.7-cp39-cp39-musllinux_1_1_i686.whl": (
        "85/fe/d952a3b0cf4aa4c5534f8ea487e39a7973380db9a9e1591b91ef8ec42771",
        "51fcd77b0b753614e5ac7c313612e00a423ed1b2fcdc9b6690a527750724e857"),
    "tinysoundfont-0.3.7-cp39-cp39-musllinux_1_1_x86_64.whl": (
        "80/5e/a9aaa01a77a3ef8ec6e3d3bab1e4c944f8a8c063753f44a5a33bd9a435b4",
        "8c2632e585f19347514dec64e96ca5bdacd06cb3fe881bd23e0e4ec0e04bde9e"),
    "tinysoundfont-0.3.7-cp39-cp39-win32.whl": (
        "c5/a0/ba53e327b532ed718cfdd0eec596498a5e04c6f22476bc1d8ae1298e7fd9",
        "4ce5715da6a46d226727e1a45e31929b015b89ba0076e8aed65821d6cda3217d"),
    "tinysoundfont-0.3.7-cp39-cp39-win_amd64.whl": (
        "42/f2/e05403e10dbdbfb072d394b539f324dc6c63f2a4a1d6e95bef296505d878",
        "a2c86d2f81e091da841792870f7a046da6f758b0304e7742175c996481eefded"),
    "tinysoundfont-0.3.7-pp310-pypy310_pp73-macosx_11_0_arm64.whl": (
        "97/19/0d8737c04d35a5fbee5b8c838db43afa47f4076cb849d47f402682998c35",
        "7c36c2882f2d0845e2a3d9131f28d9d9101ec55356a9e5fc9d3e71b1e51cbe33"),
    "tinysoundfont-0.3.7-pp310-pypy310_pp73-manylinux_2_17_i686.manylinux2014_i686.whl": (
        "b4/0f/f09c995cbf431c7836c85bc1fa586ec724bc20e5500956bba23592dff9c1",
        "3bc5309563bfeb62430c44cddc4570b43fb47f3cdefa05d6dc163c7873a022c1"),
    "tinysoundfont-0.3.7-pp310-pypy310_pp73-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": (
        "df/dc/bd93d3cf2330ef17c6a9845c6514f059668037d0067965bae09a8c47bb33",
        "0cca416d8ab08b8407a8dd0e29fea0658f2757a1c5d90d3656ffb764d3d912b9"),
    "tinysoundfont-0.3.7-pp310-pypy310_pp73-win_amd64.whl": (
        "c9/1d/975c69966b4204f779b995a25b10056bde368d9735c567da6d343fc4d687",
        "8eb6fbd5dfd6dc9774757fcfcfd0a1551e1e6453a5f37bdf5831a770327fe014"),
    "tinysoundfont-0.3.7-pp37-pypy37_pp73-manylinux_2_17_i686.manylinux2014_i686.whl": (
        "41/52/4c5d76519eb759871f531ffceccf44adad7b42f764083ce117b5a6b63706",
        "19d5ecf8644583a97150e05de6450dafa730598be14581da1180f2137b081c58"),
    "tinysoundfont-0.3.7-pp37-pypy37_pp73-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": (
        "e4/06/cf24d137bcb3a0aa340fc0178b53d592b2b88742568eac1e34dfc25da0a1",
        "92d20b300424dd5b46eae1b6157bdbd39682160b14debc1fa3eb8035a709dc01"),
    "tinysoundfont-0.3.7-pp37-pypy37_pp73-win_amd64.whl": (
        "9e/15/5e749a3bdbb80aa571bf7cbfc74190038cb462c83d89183a14d048f67dd7",
        "c268cab72f46e220942eecc98d2dc67078dcaab926cce6d6b0779487bef7343c"),
    "tinysoundfont-0.3.7-pp38-pypy38_pp73-macosx_11_0_arm64.whl": (
        "6d/7b/0e5f32b16b24752a2a3941b99ef7e81adeeaa2dadd6aff95e51a798ed8e3",
        "fbd26b4c310d815e5cc5dec4b1f71f2deae73c82821ae2b4797559fb55301f4d"),
    "tinysoundfont-0.3.7-pp38-pypy38_pp73-manylinux_2_17_i686.manylinux2014_i686.whl": (
        "e3/20/8bd2daac8190a73d277dab77bce6e5b97c72bebd10f64863e126d17d9de0",
        "d5416cd02f1bc35737d51120c2ca90197f570ecaa0735cec0924baacaf8fe099"),
    "tinysoundfont-0.3.7-pp38-pypy38_pp73-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": (
        "c8/39/2d46824e82ab117914b787b386149fe3a6bf077e0f85541c50be51a8e4eb",
        "dc4614460af7d9e7c61faa60f5cb57d77b1f930094fa52b184e19ea7c0a49b9e"),
    "tinysoundfont-0.3.7-pp38-pypy38_pp73-win_amd64.whl": (
        "b5/be/f340fbbd310f0f9dc104be4afca4be82d27b48d22f58698276d912144e37",
        "a1262c628e71fdc7c705a703fa04c52feb80193ef09da326b25a31aa07dc9c1c"),
    "tinysoundfont-0.3.7-pp39-pypy39_pp73-macosx_11_0_arm64.whl": (
        "ab/20/47cd447074e875d959d3f90e9baff5aefe69bf4d78f51993d84c53386f10",
        "3c1ef8cc3b88aee1169a69b367e51920fca1228fa12a38c192412f017e14d127"),
    "tinysoundfont-0.3.7-pp39-pypy39_pp73-manylinux_2_17_i686.manylinux2014_i686.whl": (
        "a4/32/b4dac9af50611b2d1beb7bf0fc588b05ffe8ef32240450b304520bc524bb",
        "3a14f444018fbc6a6182aeb28835aa4e5804fe8207d053252a6cdcd721f15a2f"),
    "tinysoundfont-0.3.7-pp39-pypy39_pp73-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": (
        "df/b1/6c2cbedcafd4ac2ee17bd0614b3306875e47fe2f33fec3e560a663db572b",
        "8bd00033c51c5483c900dfcb7308f1f7c6edbfedcf9ae8d12628b64b3414a580"),
    "tinysoundfont-0.3.7-pp39-pypy39_pp73-win_amd64.whl": (
        "76/d9/59f8ba492ae16f484b80d148c5405c62a0d6cce61807ecf3370ce28b686b",
        "12f9b4c81f7a6daf07cdae0ddd067a0834a564654c0f83326b522e145206fd81"),
}
