#!/usr/bin/python3
"""Key administration on a test PyKMIP server, as an operator would do it with PyKMIP's client.

usage: kmip_keys.py HOST PORT CERT KEY CA COMMAND
  create-aes BITS       create an AES key with Encrypt and Decrypt usage, activate it, print its id
  create-inactive-aes   create an AES-256 key and leave it pre-active, print its id
  create-rsa            create an RSA-2048 key pair, print the private key's id
  get ID                print the key's value in hex (the KMS returns it to its owner)
  destroy ID            revoke and destroy the key
"""
import sys

from kmip import enums
from kmip.pie.client import ProxyKmipClient


def main(argv):
    host, port, cert, key, ca, command = argv[1:7]
    args = argv[7:]
    client = ProxyKmipClient(hostname=host, port=int(port), cert=cert, key=key, ca=ca,
                             config_file='/dev/null',
                             kmip_version=enums.KMIPVersion.KMIP_1_2)
    masks = [enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT]
    with client:
        if command == 'create-aes':
            uid = client.create(enums.CryptographicAlgorithm.AES, int(args[0]),
                                cryptographic_usage_mask=masks)
            client.activate(uid)
            print(uid)
        elif command == 'create-inactive-aes':
            print(client.create(enums.CryptographicAlgorithm.AES, 256,
                                cryptographic_usage_mask=masks))
        elif command == 'create-rsa':
            _, private = client.create_key_pair(enums.CryptographicAlgorithm.RSA, 2048,
                                                public_usage_mask=masks,
                                                private_usage_mask=masks)
            client.activate(private)
            print(private)
        elif command == 'get':
            print(client.get(args[0]).value.hex())
        elif command == 'destroy':
            client.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, args[0])
            client.destroy(args[0])
            print('destroyed ' + args[0])
        else:
            sys.exit('unknown command ' + command)


if __name__ == '__main__':
    main(sys.argv)
