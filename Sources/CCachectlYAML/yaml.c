#include "cachectl_yaml.h"
#include "cachectl_lazy.h"

#define LIBYAML_CALLS(R, V) \
    R(int, yaml_parser_initialize, (yaml_parser_t *parser), (parser)) \
    V(void, yaml_parser_delete, (yaml_parser_t *parser), (parser)) \
    V(void, yaml_parser_set_encoding, (yaml_parser_t *parser, yaml_encoding_t encoding), (parser, encoding)) \
    V(void, yaml_parser_set_input_string, (yaml_parser_t *parser, const unsigned char *input, size_t size), \
      (parser, input, size)) \
    R(int, yaml_parser_parse, (yaml_parser_t *parser, yaml_event_t *event), (parser, event)) \
    V(void, yaml_event_delete, (yaml_event_t *event), (event))

CACHECTL_LAZY_LIBRARY(LIBYAML_CALLS, "libyaml-0.so.2", "libyaml-0-2")
CACHECTL_LAZY_WRAPPERS(LIBYAML_CALLS)
CACHECTL_LAZY_CHECK(LIBYAML_CALLS)
