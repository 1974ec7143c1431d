#ifndef CACHECTL_YAML_H
#define CACHECTL_YAML_H

#include <yaml.h>

/* The libyaml calls YAMLComposer (CachectlPlan) makes, each as cachectl_<its name>.
   libyaml is loaded the first time one runs (apply, plan, a config file read), not
   when cachectl starts; when it cannot be, the call prints why on stderr and exits 1,
   as the dynamic loader would have at start-up. yaml.h comes for its types only:
   nothing links libyaml, so calling its functions directly fails the link. */

int cachectl_yaml_parser_initialize(yaml_parser_t *parser);
void cachectl_yaml_parser_delete(yaml_parser_t *parser);
void cachectl_yaml_parser_set_encoding(yaml_parser_t *parser, yaml_encoding_t encoding);
void cachectl_yaml_parser_set_input_string(yaml_parser_t *parser, const unsigned char *input, size_t size);
int cachectl_yaml_parser_parse(yaml_parser_t *parser, yaml_event_t *event);
void cachectl_yaml_event_delete(yaml_event_t *event);

#endif
