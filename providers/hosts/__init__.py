"""Host tool modules: command builders (spec -> argv) and output parsers (text -> data).

Pure: nothing here opens a connection. Golden tests pin them against recorded outputs.
"""
